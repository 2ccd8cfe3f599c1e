"""The sweep's trial function: one cell trained by :func:`adamkit.lab.run.run`, its records kept."""

import os
import shutil
import uuid

from adamkit.lab.output import CsvRows, atomic_directory, write_json
from adamkit.lab.sweep.grid import SweepSpec


def run_config(spec: SweepSpec, cell):
    from adamkit.lab.run import RunConfig

    return RunConfig(task=spec.task, optimizer=cell.optimizer, lr=cell.lr, weight_decay=cell.weight_decay,
                     init=spec.init, schedule=spec.schedule, steps=spec.steps, quick=spec.quick, seed=cell.seed,
                     model=spec.model, data=spec.data, threads=1)


def train_cell(spec: SweepSpec, cell, run_dir, tensorboard=None):
    """Train ``cell``; write its metrics.csv and summary.json to ``run_dir`` (and its TensorBoard
    scalars to ``tensorboard/<run_dir's name>``); return the outcome.

    Cells are chosen on the val split; a task without one is chosen on test, and the
    outcome says so (``selection``).
    """
    from adamkit.lab.run import FIELDS, run

    result = run(run_config(spec, cell))
    if tensorboard is not None:
        from adamkit.lab.board import write

        write(tensorboard, run_dir.name, result)
    attempt = run_dir.with_name(f".{run_dir.name}.attempt-{uuid.uuid4().hex[:8]}")
    with atomic_directory(attempt) as tmp:
        rows = CsvRows(tmp / "metrics.csv", FIELDS)
        rows.write(result.records)
        rows.close()
        write_json(tmp / "summary.json", result.summary())
    try:
        os.rename(attempt, run_dir)
    except OSError:  # an earlier attempt's complete directory (killed, or paused and run again meanwhile):
        old = run_dir.with_name(f".{run_dir.name}.old-{uuid.uuid4().hex[:8]}")  # the same cell and seed
        try:
            os.rename(run_dir, old)
        except FileNotFoundError:
            pass
        os.rename(attempt, run_dir)
        shutil.rmtree(old, ignore_errors=True)
    selection = "val" if result.final.get("val") else "test"
    steps, values = result.curve(selection, result.primary)
    return {"metric": result.primary, "higher_is_better": result.higher_is_better, "selection": selection,
            "val": result.final.get(selection, {}), "test": result.final.get("test", {}),
            "diverged": result.diverged, "reason": result.diverged_reason,
            "curve": list(zip(steps, values)),  # the selection metric at each evaluation
            "settings": {"task": spec.task, "optimizer": cell.optimizer, "lr": result.settings["lr"],
                         "weight_decay": result.settings["weight_decay"], "decay": result.settings["decay"],
                         "seed": cell.seed}}


def task_direction(task):
    """``(primary metric, higher_is_better)`` of a task, without training."""
    from adamkit.lab.tasks import TASKS

    t = TASKS[task]
    return t.primary, t.higher_is_better
