"""adamkit: Adam-family optimization, correct, fast and visible.

``import adamkit`` imports no framework; pick a backend explicitly:
:mod:`adamkit.numpy`, :mod:`adamkit.torch` (and :mod:`adamkit.rules`, the math).
"""

__version__ = "0.1.0"
