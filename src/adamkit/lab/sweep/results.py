"""A finished sweep as numbers: one row per trial, heatmaps, best cells, slopes, best-vs-best."""

import csv
import io
import math

import numpy as np

from adamkit.lab.sweep import analysis

COLUMNS = ("role", "optimizer", "lr", "weight_decay", "decay", "seed", "metric", "split", "val", "test", "status",
           "seconds", "run_dir", "reason")


def rows(trials, decay_of):
    """One dict per trial (``COLUMNS``); ``decay_of(optimizer)`` names its decay mode."""
    out = []
    for t in trials:
        a = {**t.user_attrs, **t.user_attrs["outcome"]}
        out.append({"role": a.get("role", "grid"), "optimizer": a["optimizer"], "lr": a["lr"],
                    "weight_decay": a["weight_decay"], "decay": decay_of(a["optimizer"]), "seed": a["seed"],
                    "metric": a["metric"], "split": a.get("selection", "val"), "val": a["val"].get(a["metric"]),
                    "test": a["test"].get(a["metric"]), "status": "diverged" if a["diverged"] else "ok",
                    "seconds": round(a["seconds"], 3), "run_dir": a["run_dir"],
                    "reason": a.get("reason") if a["diverged"] else None})
    return sorted(out, key=lambda r: (r["role"] != "grid", r["optimizer"], r["lr"], r["weight_decay"], r["seed"]))


def csv_text(table):
    """sweep.csv's text: one line per trial, empty where a value is missing."""
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    return f.getvalue()


def _value(r, split):
    v = r[split]
    return math.nan if v is None or r["status"] == "diverged" else float(v)


def heatmaps(table, spec, split="val"):
    """``{optimizer: array (seeds, lrs, wds)}`` of ``split``'s metric (NaN: diverged)."""
    lr_i = {v: i for i, v in enumerate(spec.lrs)}
    wd_i = {v: j for j, v in enumerate(spec.weight_decays)}
    out = {o: np.full((spec.seeds, len(spec.lrs), len(spec.weight_decays)), np.nan) for o in spec.optimizers}
    for r in table:
        if r["role"] == "grid":
            out[r["optimizer"]][r["seed"], lr_i[r["lr"]], wd_i[r["weight_decay"]]] = _value(r, split)
    return out


def mean_over_seeds(h):
    """A cell's mean over seeds; NaN when any seed diverged (the cell counts as diverged)."""
    return h.mean(axis=0)


def _stats(values):
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    return {"mean": float(v.mean()) if v.size else None,
            "std": float(v.std(ddof=1)) if v.size > 1 else None, "n": int(v.size), "of": len(values)}


def summarize(table, spec, higher_is_better, margin=None):
    """The sweep's numbers as a JSON-ready dict (see the report for their meaning)."""
    grid = [r for r in table if r["role"] == "grid"]
    metric = grid[0]["metric"] if grid else None
    split = grid[0]["split"] if grid else "val"
    val, test = heatmaps(table, spec, "val"), heatmaps(table, spec, "test")
    means = {o: mean_over_seeds(h) for o, h in val.items()}
    if margin is None:
        margin = analysis.default_margin(list(means.values()))
    lrs, wds = np.array(spec.lrs), np.array(spec.weight_decays)
    out = {"task": spec.task, "metric": metric, "selection": split, "higher_is_better": higher_is_better,
           "seeds": spec.seeds, "margin": margin, "lrs": list(spec.lrs), "weight_decays": list(spec.weight_decays),
           "optimizers": {}}
    for o in spec.optimizers:
        mean, tmean = means[o], mean_over_seeds(test[o])
        cell = analysis.best_cell(mean, higher_is_better)
        best = None
        if cell is not None:
            i, j = cell
            best = {"lr": spec.lrs[i], "weight_decay": spec.weight_decays[j], "val": float(mean[i, j]),
                    "test": float(tmean[i, j]), "val_std": _stats(val[o][:, i, j])["std"],
                    "test_std": _stats(test[o][:, i, j])["std"]}
        s = analysis.slopes(list(val[o]), lrs, wds, margin, higher_is_better)
        edge_mean = analysis.edge_wd(mean, wds, margin, higher_is_better)
        best_mean = analysis.best_wd(mean, wds, higher_is_better)
        out["optimizers"][o] = {
            "best": best,
            "edge_slope": dict(zip(("mean", "std", "n"), s["edge"])), "edge_slope_per_seed": s["edge_per_seed"],
            "best_slope": dict(zip(("mean", "std", "n"), s["best"])), "best_slope_per_seed": s["best_per_seed"],
            "verdict": analysis.verdict(*s["edge"]),
            "rows": [{"lr": spec.lrs[i], "best_wd": _opt(best_mean[i]), "edge_wd": _opt(edge_mean[i])}
                     for i in range(len(spec.lrs))],
            "diverged_cells": int(np.isnan(mean).sum()), "cells": int(mean.size),
            "diverged_runs": [{k: r.get(k) for k in ("lr", "weight_decay", "seed", "reason")} for r in grid
                              if r["optimizer"] == o and r["status"] == "diverged"]}
    return out


def _opt(x):
    return None if not np.isfinite(x) else float(x)


def best_cells(summary):
    """``{optimizer: (lr, weight_decay)}`` of each optimizer's best grid cell (None: all diverged)."""
    return {o: (s["best"]["lr"], s["best"]["weight_decay"]) if s["best"] else None
            for o, s in summary["optimizers"].items()}


def confirm(table, higher_is_better):
    """Best-vs-best on fresh seeds: each optimizer's mean ± std, and for each pair Welch's
    t-test on the test metric plus on how many shared seeds one beat the other."""
    from scipy import stats

    runs = {}
    for r in table:
        if r["role"] == "confirm":
            runs.setdefault(r["optimizer"], {})[r["seed"]] = (_value(r, "val"), _value(r, "test"))
    if not runs:
        return None
    out = {"optimizers": {}, "pairs": []}
    for o, by_seed in runs.items():
        cfg = next(r for r in table if r["role"] == "confirm" and r["optimizer"] == o)
        out["optimizers"][o] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"],
                                "val": _stats([v for v, _ in by_seed.values()]),
                                "test": _stats([t for _, t in by_seed.values()])}
    names = list(runs)
    sign = 1 if higher_is_better else -1
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            xa = np.array([t for _, t in runs[a].values()])
            xb = np.array([t for _, t in runs[b].values()])
            fa, fb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
            shared = sorted(set(runs[a]) & set(runs[b]))
            wins = sum(1 for s in shared if sign * (runs[a][s][1] - runs[b][s][1]) > 0)
            identical = bool(shared) and all(runs[a][s][1] == runs[b][s][1] for s in shared)
            p = math.nan
            if min(fa.size, fb.size) > 1 and not identical and (fa.std() > 0 or fb.std() > 0):
                p = float(stats.ttest_ind(fa, fb, equal_var=False).pvalue)
            out["pairs"].append({"a": a, "b": b, "p": None if not np.isfinite(p) else p, "a_better": wins,
                                 "shared_seeds": len(shared), "identical": identical,
                                 "significant": bool(np.isfinite(p) and p < 0.05)})
    return out
