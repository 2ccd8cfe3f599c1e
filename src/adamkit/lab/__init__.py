"""The lab: trains models with adamkit's optimizers and shows what changes the result.

Importable without the CLI: ``adamkit.lab.demo.run(DemoConfig(...))`` returns the
metrics; ``adamkit.lab.cli`` is the ``adamkit`` command.
"""
