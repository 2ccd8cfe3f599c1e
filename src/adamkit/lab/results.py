"""Reading flat run records: variants, curves across seeds, final values, the noise test.

Every plot, table and finding of ``adamkit run``, ``adamkit compare`` and ``adamkit demo`` is computed here
from the rows of :func:`adamkit.lab.run.run` (task, optimizer, lr, weight_decay, decay,
init, schedule, seed, step, split, metric, value).
"""

import math
import warnings
from collections import defaultdict

import numpy as np

VARIANT = ("optimizer", "init", "schedule", "precision")


def variant(row):
    return tuple(row.get(k) for k in VARIANT)


def label(key, varying=VARIANT):
    """``adamw`` or ``adamw, init=zeros``: the optimizer, then the other fields that vary."""
    parts = dict(zip(VARIANT, key))
    return ", ".join([parts["optimizer"]] + [f"{k}={parts[k]}" for k in VARIANT[1:] if k in varying])


def varying(records):
    """The variant fields that take more than one value."""
    return tuple(k for k in VARIANT if len({r.get(k) for r in records}) > 1) or ("optimizer",)


def curves(records, split, metric):
    """``{variant: (steps, values)}``: ``values`` is seeds × steps, NaN where a run stopped early."""
    by = defaultdict(dict)
    for r in records:
        if r["split"] == split and r["metric"] == metric:
            by[variant(r)].setdefault(r["seed"], {})[r["step"]] = r["value"]
    out = {}
    for key, seeds in by.items():
        steps = sorted({s for curve in seeds.values() for s in curve})
        values = np.array([[curve.get(s, np.nan) for s in steps] for curve in seeds.values()], dtype=float)
        out[key] = (np.array(steps), values)
    return out


def finals(records, split, metric, diverged=()):
    """``{variant: {seed: last value}}``, leaving out ``diverged`` (variant, seed) pairs."""
    out = defaultdict(dict)
    for r in records:
        if r["split"] == split and r["metric"] == metric and (variant(r), r["seed"]) not in diverged:
            out[variant(r)][r["seed"]] = (r["step"], r["value"])  # rows come in step order
    return {k: {seed: v for seed, (_, v) in seeds.items()} for k, seeds in out.items()}


def mean_std(values):
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def welch(a, b):
    """Welch's t-test (unequal variances) of two samples: ``(t, p)``, two-sided; NaN when
    either has fewer than 2 values. Two samples without spread (every seed the same) differ
    exactly (p = 0) or not at all (p = 1)."""
    from scipy import stats

    a, b = [v for v in a if math.isfinite(v)], [v for v in b if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    if np.std(a) == 0 and np.std(b) == 0:
        return (0.0, 1.0) if a[0] == b[0] else (math.copysign(math.inf, a[0] - b[0]), 0.0)
    with warnings.catch_warnings():  # near-identical samples: scipy warns, the p-value still stands
        warnings.simplefilter("ignore", RuntimeWarning)
        t, p = stats.ttest_ind(a, b, equal_var=False)
    return float(t), float(p)


# The demo's curves, named as its plots and findings read them: (split, metric) of the rows.
HISTORY = {"train_loss": ("train", "mse"), "test_loss": ("test", "mse"), "weight_norm": ("model", "weight_norm"),
           "lr": ("model", "lr")}


def history(records, task, optimizer):
    """``{name: [value per evaluation]}`` of one (task, optimizer) run's rows, for :data:`HISTORY`."""
    out = {name: [] for name in HISTORY}
    where = {v: k for k, v in HISTORY.items()}
    for r in records:
        name = where.get((r["split"], r["metric"]))
        if name and r["task"] == task and r["optimizer"] == optimizer:
            out[name].append(r["value"])
    return out


def rows_of(base, history_by_step):
    """Flat rows (:data:`adamkit.lab.run.FIELDS`) from ``base`` fields and a history
    ``{name: [value per step]}`` with a value at every step from 1."""
    out = []
    for name, values in history_by_step.items():
        split, metric = HISTORY[name]
        out += [{**base, "step": k, "split": split, "metric": metric, "value": float(v)}
                for k, v in enumerate(values, 1)]
    return sorted(out, key=lambda r: r["step"])  # rows come in step order, as run() yields them
