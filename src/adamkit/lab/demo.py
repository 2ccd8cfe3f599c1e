"""``adamkit demo``: the linear-regression study, end to end.

Two studies (:mod:`adamkit.lab.studies`) × the optimizers of
:mod:`adamkit.lab.optimizers`, same step budget each; ``run`` returns the metrics,
``save`` writes them with plots and a report.
"""

import time
from dataclasses import asdict, dataclass

from adamkit import init
from adamkit.lab import optimizers, studies
from adamkit.lab.train import BACKENDS, train


@dataclass
class DemoConfig:
    steps: int = 2000
    backend: str = "torch"
    optimizers: tuple = tuple(optimizers.SPECS)
    studies: tuple = tuple(studies.STUDIES)
    lr: float | None = None  # None: each optimizer's default
    weight_decay: float | None = None  # None: each study's default per optimizer
    init: str = "zeros"
    seed: int = 0

    def validate(self):
        """Raise ValueError naming the first bad field."""
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        for name in self.optimizers:
            if name not in optimizers.SPECS:
                raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(optimizers.SPECS)}")
        if not self.optimizers:
            raise ValueError("optimizers: choose at least one")
        for name in self.studies:
            if name not in studies.STUDIES:
                raise ValueError(f"unknown study {name!r}; expected one of {', '.join(studies.STUDIES)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay!r}")
        if self.init not in init.INITIALIZERS:
            raise ValueError(f"unknown init {self.init!r}; expected one of {', '.join(init.INITIALIZERS)}")


def run(config: DemoConfig, progress=None):
    """Train every (study, optimizer) pair; returns a JSON-ready dict of results.

    ``progress(n)`` is called after every step (for a progress bar).
    """
    config.validate()
    results = {"config": asdict(config), "studies": {}}
    started = time.perf_counter()
    for study_name in config.studies:
        study = studies.STUDIES[study_name](seed=config.seed)
        runs = {}
        for name in config.optimizers:
            spec = optimizers.SPECS[name]
            wd = config.weight_decay if config.weight_decay is not None else study.weight_decay.get(name)
            spec = optimizers.with_overrides(spec, lr=config.lr, weight_decay=wd)
            history, w, b = train(study, spec, steps=config.steps, backend=config.backend,
                                  init_scheme=config.init, seed=config.seed, progress=progress)
            runs[name] = {"label": spec.label, "lr": spec.lr, "weight_decay": spec.weight_decay,
                          "decay": spec.decay if spec.weight_decay else None, "rule": spec.rule,
                          "history": {k: v.tolist() for k, v in history.items()},
                          "w": w.ravel().tolist(), "b": b}
        results["studies"][study_name] = {"title": study.title, "degree": study.degree, "runs": runs}
    results["seconds"] = time.perf_counter() - started
    return results


def study_data(name, seed):
    """The study's data, to draw the fits over it."""
    return studies.STUDIES[name](seed=seed)


def save(results, out):
    """Write config.json, metrics.csv, summary.json, the PNGs and report.html into ``out``,
    all at once (nothing half-written). Returns the findings."""
    from adamkit.lab import plots
    from adamkit.lab.findings import findings
    from adamkit.lab.output import atomic_directory, write_json, write_metrics_csv
    from adamkit.lab.report import render
    from adamkit.lab.train import METRICS

    seed = results["config"]["seed"]
    data = {name: study_data(name, seed) for name in results["studies"]}
    facts = findings(results)
    with atomic_directory(out) as tmp:
        write_json(tmp / "config.json", results["config"])
        write_metrics_csv(tmp / "metrics.csv", results, list(METRICS))
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
            name: {opt: {"train_loss": run["history"]["train_loss"][-1],
                         "test_loss": run["history"]["test_loss"][-1],
                         "weight_norm": run["history"]["weight_norm"][-1],
                         "lr": run["lr"], "weight_decay": run["weight_decay"], "decay": run["decay"],
                         "w": run["w"], "b": run["b"]}
                   for opt, run in study["runs"].items()}
            for name, study in results["studies"].items()}}
        write_json(tmp / "summary.json", summary)
        (tmp / "report.html").write_text(render(results, images, facts))
    return facts
