"""``adamkit demo``: the two regression tasks (``line``, ``poly``) with every optimizer.

Each (task, optimizer) pair trains through :func:`adamkit.lab.run.run` (torch, float64),
or through the hand-written NumPy loop of :mod:`adamkit.lab.train` with
``backend="numpy"`` (the same numbers). ``run`` returns the metrics, ``save`` writes them
with plots and a report.
"""

import time
from dataclasses import asdict, dataclass

from adamkit.lab import results, studies
from adamkit.lab.optimizers import OPTIMIZERS
from adamkit.lab.run import RunConfig, clean
from adamkit.lab.run import run as run_one

BACKENDS = ("torch", "numpy")
STUDIES = ("line", "poly")


@dataclass
class DemoConfig:
    steps: int = 2000
    backend: str = "torch"
    # At the demo's constant rate AdamC's "corrected" decay is "decoupled" exactly: left to compare.
    optimizers: tuple = tuple(name for name in OPTIMIZERS if name != "adamw-corrected")
    studies: tuple = STUDIES
    lr: float | None = None  # None: each optimizer's default
    weight_decay: float | None = None  # None: each study's default per decay mode
    init: str = "zeros"
    seed: int = 0

    def validate(self):
        """Raise ValueError naming the first bad field."""
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        if not self.optimizers:
            raise ValueError("optimizers: choose at least one")
        if not self.studies:
            raise ValueError("studies: choose at least one")
        for name in self.studies:
            if name not in STUDIES:
                raise ValueError(f"unknown study {name!r}; expected one of {', '.join(STUDIES)}")
        for name in self.optimizers:
            self.run_config(self.studies[0], name).validate()

    def run_config(self, study, optimizer):
        return RunConfig(task=study, optimizer=optimizer, lr=self.lr, weight_decay=self.weight_decay,
                         init=self.init, steps=self.steps, seed=self.seed, dtype="fp64")


def _train(config, study, name, progress):
    """One (study, optimizer) pair: its flat records, final weights, settings and why it stopped early."""
    run_config = config.run_config(study, name)
    settings = run_config.resolved()
    if config.backend == "numpy":
        from adamkit.lab.train import train_run

        history, w, b, reason = train_run(studies.STUDIES[study](seed=config.seed), name, lr=settings["lr"],
                                          weight_decay=settings["weight_decay"], decay=settings["decay"],
                                          steps=config.steps, init_scheme=settings["init"], seed=config.seed,
                                          progress=progress)
        base = {"task": study, "optimizer": name, "lr": settings["lr"], "weight_decay": settings["weight_decay"],
                "decay": settings["decay"], "init": settings["init"], "schedule": run_config.schedule,
                "precision": run_config.precision, "seed": config.seed}
        records = results.rows_of(base, history)
        w = w.ravel().tolist()
    else:
        result = run_one(run_config, progress=progress)
        records = result.records
        w, b = result.model.weight.detach().ravel().tolist(), float(result.model.bias.detach()[0])
        reason = result.diverged_reason
    return records, w, b, settings, reason


def run(config: DemoConfig, progress=None):
    """Train every (study, optimizer) pair; returns a dict of results: ``records``, the flat rows
    of every run (as :func:`adamkit.lab.run.run` yields them, whatever the backend), and per
    study and optimizer the settings, final weights and a ``history`` read from those rows.

    ``progress(n)`` is called after every step (for a progress bar).
    """
    config.validate()
    out = {"config": asdict(config), "studies": {}, "records": []}
    started = time.perf_counter()
    for study in config.studies:
        runs, data = {}, studies.STUDIES[study](seed=config.seed)
        for name in config.optimizers:
            records, w, b, settings, reason = _train(config, study, name, progress)
            out["records"] += records
            history = results.history(records, study, name)
            spec = OPTIMIZERS[name]
            runs[name] = {"label": spec.label, "lr": settings["lr"], "weight_decay": settings["weight_decay"],
                          "decay": settings["decay"], "rule": spec.rule, "history": history, "w": w, "b": b,
                          "diverged": reason is not None, "reason": reason,
                          "steps_done": len(history["train_loss"])}
        out["studies"][study] = {"title": data.title, "degree": data.degree, "runs": runs}
    out["seconds"] = time.perf_counter() - started
    return out


def save(results, out, unique=False):
    """Write config.json, metrics.csv, summary.json, the PNGs and report.html into ``out``,
    all at once (nothing half-written). Returns the findings and the directory written
    (``out``, or ``out-2``... with ``unique`` when ``out`` is taken)."""
    from adamkit.lab import findings, plots
    from adamkit.lab.output import atomic_directory, write_json, write_text
    from adamkit.lab.report import render

    seed = results["config"]["seed"]
    data = {name: studies.STUDIES[name](seed=seed) for name in results["studies"]}
    facts = findings.demo(results)
    target = atomic_directory(out, unique)
    with target as tmp:
        write_json(tmp / "config.json", results["config"])
        _write_metrics(tmp / "metrics.csv", results)
        images = {"Loss curves": tmp / "loss_curves.png", "Fitted curves": tmp / "fits.png",
                  "Weight norms": tmp / "weight_norms.png", "Final test loss": tmp / "final_test_loss.png"}
        plots.loss_curves(results, images["Loss curves"])
        plots.fits(results, data, images["Fitted curves"])
        plots.weight_norms(results, images["Weight norms"])
        plots.final_test_loss(results, images["Final test loss"])
        if "poly" in results["studies"]:
            images["Polynomial coefficients"] = tmp / "coefficients.png"
            plots.coefficients(results, "poly", images["Polynomial coefficients"])
        summary = {"findings": facts, "seconds": results["seconds"], "studies": {
            name: {opt: {"train_loss": _last(run, "train_loss"), "test_loss": _last(run, "test_loss"),
                         "weight_norm": _last(run, "weight_norm"), "diverged": run["diverged"],
                         "diverged_reason": run["reason"],
                         "steps_done": run["steps_done"], "lr": run["lr"], "weight_decay": run["weight_decay"],
                         "decay": run["decay"], "w": run["w"], "b": run["b"]}
                   for opt, run in study["runs"].items()}
            for name, study in results["studies"].items()}}
        write_json(tmp / "summary.json", clean(summary))
        write_text(tmp / "report.html", render(results, images, facts))
    return facts, target.path


def _last(run, key):
    values = run["history"][key]
    return values[-1] if values else None


def _write_metrics(path, results):
    """The flat rows of every run (:data:`adamkit.lab.run.FIELDS`), as ``adamkit run`` and
    ``adamkit compare`` write them."""
    from adamkit.lab.output import CsvRows
    from adamkit.lab.run import FIELDS

    rows = CsvRows(path, FIELDS)
    try:
        rows.write(results["records"])
    finally:
        rows.close()
