"""The lab: trains models with adamkit's optimizers and shows what changes the result.

Importable without the CLI: ``adamkit.lab.run.run(RunConfig("mnist1d"))`` trains one task
and returns its records; ``adamkit.lab.compare`` runs many over seeds;
``adamkit.lab.demo.run(DemoConfig(...))`` is the regression demo; ``adamkit.lab.cli`` is
the ``adamkit`` command.
"""
