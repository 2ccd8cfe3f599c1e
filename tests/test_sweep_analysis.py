"""Slopes read off synthetic heatmaps whose answer is known by construction."""

import math

import numpy as np
import pytest

from adamkit.lab.sweep import analysis
from adamkit.lab.sweep.grid import log_range

LRS = np.logspace(-4, -1, 4)
WDS = np.logspace(-8, 1, 19)  # half-decade steps


def heatmap(s, c=-4.0, noise=0.0, seed=0):
    """Error with its best weight decay at log10 wd = c + s*log10 lr, a shallow bowl below it
    and a wall of +1 half a decade above: edge and best both move as wd ∝ lr^s."""
    u = np.log10(WDS)[None, :] - (c + s * np.log10(LRS)[:, None])
    h = np.where(u > 0.25, 1.0, 0.01 * u**2)
    return h + noise * np.random.default_rng(seed).random(h.shape) * 0.001


@pytest.mark.parametrize("s", [-1.0, -0.5, 0.0, 0.5])
def test_known_slope_is_recovered(s):
    h = heatmap(s)
    assert analysis.slope(LRS, analysis.edge_wd(h, WDS, margin=0.1)) == pytest.approx(s, abs=1e-9)
    assert analysis.slope(LRS, analysis.best_wd(h, WDS)) == pytest.approx(s, abs=1e-9)
    # accuracy (higher is better) reads the same
    assert analysis.slope(LRS, analysis.edge_wd(1 - h, WDS, 0.1, higher_is_better=True)) == pytest.approx(s, abs=1e-9)


def test_edge_is_half_a_decade_above_the_best():
    h = heatmap(-1.0)
    np.testing.assert_allclose(np.log10(analysis.edge_wd(h, WDS, 0.1)) - np.log10(analysis.best_wd(h, WDS)), 0.5)
    np.testing.assert_allclose(np.log10(analysis.best_wd(h, WDS)), -4 - np.log10(LRS))


def test_diverged_cells_count_as_too_much_decay_and_dead_rows_are_skipped():
    h = heatmap(-1.0)
    first_edge = analysis.edge_wd(h, WDS, 0.1)
    h[np.log10(WDS)[None, :] > np.log10(first_edge)[:, None] - 1e-9] = np.nan  # the wall diverges instead
    np.testing.assert_allclose(analysis.edge_wd(h, WDS, 0.1), first_edge)
    h[0] = np.nan  # a row where everything diverged carries no information
    assert math.isnan(analysis.edge_wd(h, WDS, 0.1)[0]) and math.isnan(analysis.best_wd(h, WDS)[0])
    assert analysis.slope(LRS, analysis.edge_wd(h, WDS, 0.1)) == pytest.approx(-1.0)


def test_no_edge_in_range_gives_no_slope():
    h = np.zeros((4, 5))
    assert np.isnan(analysis.edge_wd(h, WDS[:5], 0.1)).all()
    assert math.isnan(analysis.slope(LRS, analysis.edge_wd(h, WDS[:5], 0.1)))


def test_seed_spread_and_verdicts():
    per_seed = [heatmap(-1.0, noise=1, seed=k) for k in range(3)]
    result = analysis.slopes(per_seed, LRS, WDS, margin=0.1)
    mean, std, n = result["edge"]
    assert (mean, std, n) == (pytest.approx(-1.0), pytest.approx(0.0), 3)
    assert "moves with the learning rate as wd ∝ lr^-1.00" in analysis.verdict(mean, 0.05, n)
    assert "barely moves" in analysis.verdict(0.21, 0.04, 3)
    assert "within twice the seed spread" in analysis.verdict(-0.79, 0.5, 3)
    assert "no edge" in analysis.verdict(math.nan, math.nan, 0)


def test_best_cell_and_margin():
    h = heatmap(0.0)
    i, j = analysis.best_cell(h)
    assert h[i, j] == h.min()
    assert analysis.best_cell(np.full((2, 2), np.nan)) is None
    assert analysis.default_margin([np.array([[0.2, 0.9], [np.nan, 0.5]])]) == pytest.approx(0.07)


@pytest.mark.parametrize("text, message", [
    ("1e-3:1e-1", "malformed"), ("a:b:3", "malformed"), ("1e-3:1e-1:0", "n must be >= 1"),
    ("0:1:3", "finite numbers > 0"), ("1e-1:1e-3:3", "hi must be >= lo"), ("inf:1:2", "finite"),
    ("1e-3:1e-1:1", "lo == hi")])
def test_bad_ranges(text, message):
    with pytest.raises(ValueError, match=message):
        log_range(text, "--lr")


def test_ranges():
    assert log_range("3e-3:3e-1:5") == (0.003, 0.00948683, 0.03, 0.0948683, 0.3)
    assert log_range("1e-5:1e-1:6") == (1e-05, 6.30957e-05, 0.000398107, 0.00251189, 0.0158489, 0.1)
    assert log_range("0.01") == (0.01,) == log_range("1e-2:1e-2:1")


def _confirm_rows(values):
    return [{"role": "confirm", "optimizer": o, "lr": 0.01, "weight_decay": 0.1, "seed": 1000 + k, "val": v,
             "test": v, "status": "ok"} for o, vs in values.items() for k, v in enumerate(vs)]


def test_best_vs_best_noise_test():
    from adamkit.lab.sweep.results import confirm

    clear = confirm(_confirm_rows({"a": [0.10, 0.11, 0.12, 0.10], "b": [0.30, 0.31, 0.29, 0.30]}), False)
    (pair,) = clear["pairs"]
    assert pair["significant"] and pair["p"] < 1e-4 and pair["a_better"] == 4 and not pair["identical"]
    assert clear["optimizers"]["a"]["test"]["mean"] == pytest.approx(0.1075)
    noisy = confirm(_confirm_rows({"a": [0.10, 0.30, 0.20], "b": [0.21, 0.11, 0.25]}), False)["pairs"][0]
    assert not noisy["significant"] and noisy["a_better"] == 2
    same = confirm(_confirm_rows({"a": [0.2, 0.2], "b": [0.2, 0.2]}), False)["pairs"][0]
    assert same["identical"] and same["p"] is None and not same["significant"]
    higher = confirm(_confirm_rows({"a": [0.9, 0.91], "b": [0.5, 0.52]}), True)["pairs"][0]
    assert higher["a_better"] == 2


def test_one_adamw_form_is_read_in_the_other():
    from adamkit.lab.findings import sweep as findings

    opt = {"best": {"val": 0.2}, "verdict": "…", "best_slope": {"mean": None, "std": None}, "diverged_cells": 0,
           "cells": 9, "edge_slope": {"mean": -0.79, "std": 0.04, "n": 3}}
    summary = {"selection": "val", "task": "t", "metric": "error", "higher_is_better": False,
               "optimizers": {"adamw": opt}}
    assert any("independent form (wd × lr0), the same adamw runs have edge slope +0.21" in f for f in findings(summary))
    summary["optimizers"] = {"adamw-independent": opt}
    assert any("decoupled form (wd / lr0), the same adamw-independent runs have edge slope -1.79" in f
               for f in findings(summary))


def test_heatmaps_share_one_scale_and_show_diverged_cells(tmp_path):
    from matplotlib import image

    from adamkit.lab.sweep import plots
    from adamkit.lab.sweep.grid import SweepSpec
    from adamkit.lab.sweep.results import summarize

    spec = SweepSpec("t", ("adamw", "adam-l2"), tuple(LRS), tuple(WDS[:8]), seeds=1)
    table = []
    for o, s in (("adamw", -1.0), ("adam-l2", 0.0)):
        h = heatmap(s)[:, :8]
        h[0, 0] = np.nan  # one diverged cell each
        table += [{"role": "grid", "optimizer": o, "lr": lr, "weight_decay": wd, "seed": 0, "metric": "error",
                   "split": "val", "val": None if np.isnan(h[i, j]) else h[i, j], "test": h[i, j],
                   "status": "diverged" if np.isnan(h[i, j]) else "ok"}
                  for i, lr in enumerate(spec.lrs) for j, wd in enumerate(spec.weight_decays)]
    summary = summarize(table, spec, higher_is_better=False, margin=0.1)
    assert summary["optimizers"]["adamw"]["diverged_cells"] == 1
    means = {o: np.array([[r["val"] if r["val"] is not None else np.nan for r in table
                           if r["optimizer"] == o and r["lr"] == lr] for lr in spec.lrs]) for o in spec.optimizers}
    plots.heatmaps(summary, means, tmp_path / "h.png")
    pixels = image.imread(tmp_path / "h.png")[..., :3]
    assert pixels.shape[1] > 2 * pixels.shape[0] and pixels.std() > 0.05
    grey = np.all(np.abs(pixels - 0.85) < 0.02, axis=-1)  # the diverged cells' colour
    assert grey.sum() > 2000  # about 6000 with the two diverged cells, about 300 (antialiasing) without
