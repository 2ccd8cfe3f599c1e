"""``adamkit sweep``: lr × weight-decay grids over optimizers, resumable and shared between machines.

:func:`run_sweep` trains every cell of a :class:`~adamkit.lab.sweep.grid.SweepSpec`
through an Optuna storage (:mod:`~adamkit.lab.sweep.storage`), then writes sweep.csv,
summary.json, heatmaps.png and report.html into the sweep directory. The same call
again continues where a killed one stopped; on several machines against one PostgreSQL
URL it divides the grid between them.
"""

import functools
import json
from pathlib import Path

from adamkit.lab.sweep import results, runner, search
from adamkit.lab.sweep import storage as st
from adamkit.lab.sweep.grid import Cell, SweepSpec, log_range

CONFIRM_SEED0 = 1000  # best-vs-best seeds start here, apart from any grid's seeds


def _optimizers():
    from adamkit.lab.optimizers import OPTIMIZERS

    return OPTIMIZERS


def decaying_optimizers():
    """The optimizers with a weight-decay mode: those a weight-decay axis means something for."""
    return tuple(n for n, o in _optimizers().items() if o.mode)


def validate(spec: SweepSpec):
    """Raise ValueError naming the first bad setting, before anything is trained or written."""
    from adamkit.lab.sweep.trainer import run_config

    spec.validate(known_optimizers=decaying_optimizers())
    run_config(spec, spec.cells()[0]).validate()  # task, model, schedule, init, steps, data


def run_sweep(spec: SweepSpec, out, *, storage=None, jobs=1, heartbeat=st.DEFAULT_HEARTBEAT, confirm=0,
              margin=None, objective=None, direction=None, progress=None, tensorboard=None):
    """Train the sweep (or what is left of it), then write its outputs. Returns the summary dict.

    ``objective(cell, run_dir)``: the trial function (default: train with
    :func:`adamkit.lab.run.run`); ``direction``: ``(metric, higher_is_better)`` of the
    task (default: read from the task). ``progress(stage, done, total)``. ``tensorboard``: a
    directory for each trained cell's TensorBoard scalars and hparams (the default objective).
    """
    from adamkit.lab import findings
    from adamkit.lab.run import clean
    from adamkit.lab.sweep import plots, report
    from adamkit.lab.sweep.trainer import task_direction, train_cell

    out = Path(out)
    _, higher = direction or task_direction(spec.task)
    objective = objective or functools.partial(train_cell, spec, tensorboard=tensorboard)
    store, study = runner.prepare(out, spec, storage, heartbeat, "maximize" if higher else "minimize")

    def stage(name):
        return (lambda done, total: progress(name, done, total)) if progress else None

    kwargs = dict(jobs=jobs, heartbeat=heartbeat, higher_is_better=higher)
    optimizers = _optimizers()
    decay_of = lambda o: optimizers[o].mode if o in optimizers else None  # noqa: E731
    labels = {o: optimizers[o].label for o in spec.optimizers if o in optimizers}
    if spec.search == "tpe":
        found = search.search(store, spec, objective, out, progress=stage("search"), **kwargs)
        table = search.rows(found, decay_of)
        summary = search.summarize(found, spec, higher)
    else:
        trials = runner.execute(store, study, spec.cells(), objective, out, progress=stage("grid"), **kwargs)
        table = results.rows(trials, decay_of)
        summary = results.summarize(table, spec, higher, margin)
    confirmed = None
    if confirm:
        best = {o: cell for o, cell in results.best_cells(summary).items() if cell}
        cells = [Cell(o, lr, wd, CONFIRM_SEED0 + k, "confirm") for o, (lr, wd) in best.items() for k in range(confirm)]
        extra = runner.execute(store, study, cells, objective, out, progress=stage("confirm"), **kwargs)
        table += results.rows(extra, decay_of)
        confirmed = results.confirm(table, higher)
        summary["confirm"] = confirmed
    if spec.search == "tpe":
        facts = findings.search(summary, labels) + (findings.sweep({**summary, "optimizers": {}}, confirmed, labels)
                                                    if confirmed else [])
    else:
        facts = findings.sweep(summary, confirmed, labels)
    summary["findings"] = facts
    summary["spec"] = spec.as_dict()
    summary["trials_in_storage"] = len(study.trials)  # grid and confirm trials, failed (killed) ones included
    seconds = sum(r["seconds"] for r in table)

    runner.write_atomic(out / "sweep.csv", results.csv_text(table))
    runner.write_atomic(out / "summary.json", json.dumps(clean(summary), indent=2, allow_nan=False,
                                                         ensure_ascii=False) + "\n")
    if spec.search == "tpe":
        png, caption, render = out / "search.png", "every trial: lr × weight decay, coloured by its value", \
            report.render_search
        draw = lambda path: search.plot(summary, path, labels)  # noqa: E731
    else:
        png, caption, render = out / "heatmaps.png", "lr × weight decay, mean over seeds", report.render
        means = {o: results.mean_over_seeds(h) for o, h in results.heatmaps(table, spec, "val").items()}
        draw = lambda path: plots.heatmaps(summary, means, path, labels)  # noqa: E731
    with runner.replacing(png) as tmp:
        draw(tmp)
    runner.write_atomic(out / "report.html", render(summary, spec, {caption: png}, facts, confirmed, labels, seconds))
    return summary


__all__ = ["run_sweep", "SweepSpec", "Cell", "log_range", "validate", "decaying_optimizers"]
