"""The ``adamkit`` commands, one module each with ``add_parser(subparsers)``."""
