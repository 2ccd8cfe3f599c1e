"""Numbers read off an lr × weight-decay heatmap: the best cell, the "too much decay" edge,
and how each moves with the learning rate.

A heatmap here is an array ``h[i, j]`` of one metric at ``lrs[i]``, ``wds[j]`` (NaN: the
run diverged). Everything is computed on the loss form ``-h`` when higher is better, so
smaller is always better below.

- best weight decay of row ``i``: ``argmin_j h[i, j]``;
- edge of row ``i``: the smallest ``wd`` above the row's best whose value exceeds the
  row's best by more than ``margin`` (a diverged cell exceeds it); rows without one have
  no edge;
- a slope: least squares of ``log10 wd`` on ``log10 lr`` over the rows that have a value,
  so ``wd ∝ lr^slope``. Slope 0: the good weight decay does not move with the learning
  rate (the AdamW paper's "separable" picture); slope -1: it moves as ``1/lr`` (the
  diagonal that decay multiplied by lr draws).

The edge is the stable number: the bottom of a flat basin wanders between seeds, while
the wall on the too-much-decay side stays put.
"""

import math

import numpy as np


def as_loss(h, higher_is_better):
    h = np.asarray(h, dtype=float)
    return -h if higher_is_better else h


def best_wd(h, wds, higher_is_better=False):
    """Per row, the weight decay with the best value (NaN for a row where every run diverged)."""
    loss = as_loss(h, higher_is_better)
    out = np.full(loss.shape[0], np.nan)
    for i, row in enumerate(loss):
        if np.isfinite(row).any():
            out[i] = wds[int(np.nanargmin(np.where(np.isfinite(row), row, np.nan)))]
    return out


def edge_wd(h, wds, margin, higher_is_better=False):
    """Per row, the smallest wd above the row's best whose value is worse than the best by
    more than ``margin`` (NaN where no such cell exists)."""
    loss = as_loss(h, higher_is_better)
    out = np.full(loss.shape[0], np.nan)
    for i, row in enumerate(loss):
        finite = np.isfinite(row)
        if not finite.any():
            continue
        j_best = int(np.nanargmin(np.where(finite, row, np.nan)))
        for j in range(j_best + 1, len(wds)):
            if not finite[j] or row[j] > row[j_best] + margin:
                out[i] = wds[j]
                break
    return out


def slope(lrs, wds_per_row):
    """Least-squares slope of log10(wd) on log10(lr) over rows with a value; NaN with fewer
    than two such rows."""
    x, y = np.log10(np.asarray(lrs, float)), np.asarray(wds_per_row, float)
    keep = np.isfinite(y)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(x[keep], np.log10(y[keep]), 1)[0])


def spread(values):
    """``(mean, std, n)`` of the finite values; std is NaN with fewer than two."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if not v.size:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def default_margin(heatmaps):
    """A tenth of the span between the best and the worst finite value over all heatmaps
    (the paper's "10 points of error" on a 0-100 scale, scaled to any metric)."""
    values = np.concatenate([np.asarray(h, float).ravel() for h in heatmaps])
    values = values[np.isfinite(values)]
    return float(0.1 * (values.max() - values.min())) if values.size else math.nan


def slopes(per_seed, lrs, wds, margin, higher_is_better=False):
    """Edge and best-wd slopes of each seed's heatmap, with their spread over seeds.

    Returns ``{"edge": (mean, std, n), "best": (mean, std, n), "edge_per_seed": [...],
    "best_per_seed": [...]}``.
    """
    edge = [slope(lrs, edge_wd(h, wds, margin, higher_is_better)) for h in per_seed]
    best = [slope(lrs, best_wd(h, wds, higher_is_better)) for h in per_seed]
    return {"edge": spread(edge), "best": spread(best), "edge_per_seed": edge, "best_per_seed": best}


def best_cell(h, higher_is_better=False):
    """``(i, j)`` of the best finite cell, or None when every cell diverged."""
    loss = as_loss(h, higher_is_better)
    if not np.isfinite(loss).any():
        return None
    return tuple(int(k) for k in np.unravel_index(np.nanargmin(np.where(np.isfinite(loss), loss, np.nan)), loss.shape))


def verdict(mean, std, n):
    """A sentence on whether the good weight decay moves with the learning rate, from the
    edge slope's mean and spread over ``n`` seeds."""
    if not np.isfinite(mean):
        return "no edge was found in enough rows to say (widen the weight-decay range upwards)"
    noise = f" ± {std:.2f} over {n} seeds" if n > 1 else " (from one seed: no spread to judge it by)"
    if abs(mean) <= 0.3:
        return f"the good weight decay barely moves with the learning rate: edge slope {mean:+.2f}{noise}"
    beyond = n < 2 or abs(mean) > 2 * std
    how = "moves" if beyond else "may move (within twice the seed spread)"
    return (f"the good weight decay {how} with the learning rate as wd ∝ lr^{mean:.2f}: "
            f"edge slope {mean:+.2f}{noise}")
