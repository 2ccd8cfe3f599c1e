"""The demo end to end, its numbers against theory, and its CLI's error paths."""

import csv
import json

import numpy as np
import pytest
from matplotlib import image
from scipy.optimize import lsq_linear

from adamkit.lab import cli, demo, studies
from adamkit.lab.optimizers import OPTIMIZERS
from adamkit.lab.run import FIELDS
from adamkit.lab.train import train


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert cli.main(["demo", "--steps", "40", "--out", str(out), "--quiet"]) == 0
    return out


def test_outputs_are_complete(small_run):
    names = {p.name for p in small_run.iterdir()}
    pngs = {"loss_curves.png", "fits.png", "weight_norms.png", "final_test_loss.png", "coefficients.png"}
    assert names == {"config.json", "metrics.csv", "summary.json", "report.html"} | pngs
    for png in pngs:
        pixels = image.imread(small_run / png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels[..., :3].std() > 0.05  # not a blank canvas
    with open(small_run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FIELDS  # the same flat rows as run and compare write
    test = [r for r in rows if (r["split"], r["metric"]) == ("test", "mse")]
    shown = demo.DemoConfig().optimizers
    assert len(test) == 2 * len(shown) * 40
    assert {(r["task"], r["optimizer"]) for r in test} == {(s, o) for s in ("line", "poly") for o in shown}
    summary_runs = json.loads((small_run / "summary.json").read_text())["studies"]
    last = {(r["task"], r["optimizer"]): float(r["value"]) for r in test if r["step"] == "40"}
    assert all(last[s, o] == summary_runs[s][o]["test_loss"] for s, o in last)
    report = (small_run / "report.html").read_text()
    assert report.count("data:image/png;base64,") == len(pngs)
    assert "<table>" in report and "AdamW (independent)" in report
    summary = json.loads((small_run / "summary.json").read_text())
    assert summary["findings"] and all(f in report for f in summary["findings"][:1])
    assert json.loads((small_run / "config.json").read_text())["steps"] == 40
    assert not list(small_run.parent.glob(".*tmp-*"))


def test_adamw_fits_the_line():
    results = demo.run(demo.DemoConfig(optimizers=("adamw",), studies=("line",)))
    run = results["studies"]["line"]["runs"]["adamw"]
    assert abs(run["w"][0] - 2.0) < 0.15 and abs(run["b"]) < 0.3


def test_numpy_backend_gives_the_same_numbers():
    config = dict(steps=300, optimizers=tuple(OPTIMIZERS))
    a = demo.run(demo.DemoConfig(backend="torch", **config))
    b = demo.run(demo.DemoConfig(backend="numpy", **config))
    for study in a["studies"]:
        for opt in config["optimizers"]:
            ra, rb = a["studies"][study]["runs"][opt], b["studies"][study]["runs"][opt]
            np.testing.assert_allclose(ra["w"], rb["w"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(ra["history"]["test_loss"], rb["history"]["test_loss"], rtol=1e-9)


def test_every_decay_mode_shrinks_the_weights_of_the_hard_study():
    results = demo.run(demo.DemoConfig(studies=("poly",), backend="numpy"))
    runs = results["studies"]["poly"]["runs"]
    plain = runs["adam"]["history"]["weight_norm"][-1]
    decayed = {o: r["history"]["weight_norm"][-1] for o, r in runs.items() if r["decay"]}
    assert set(decayed) == {"adam-l2", "adam-l1", "adamw", "adamw-independent"}
    assert all(n < plain for n in decayed.values()), (plain, decayed)
    tests = {o: r["history"]["test_loss"][-1] for o, r in runs.items()}
    assert len({round(v, 3) for v in tests.values()}) == len(tests)  # the modes differ visibly


def _small_problem():
    """Cubic features of 40 points, no intercept: closed forms are easy to compute."""
    study = studies.poly(n=40, degree=3, noise=0.1, seed=3)
    x = study.features(study.x_train)
    return study, x, study.y_train


def test_adam_with_l2_converges_to_ridge():
    study, x, y = _small_problem()
    lam = 0.05
    _, w, _ = train(study, "adam-l2", lr=0.01, weight_decay=lam, decay="l2", steps=6000, fit_intercept=False)
    n, d = x.shape
    ridge = np.linalg.solve(x.T @ x / n + lam * np.eye(d), x.T @ y / n)
    np.testing.assert_allclose(w, ridge, atol=2e-3)


def test_adamw_converges_to_box_constrained_least_squares():
    study, x, y = _small_problem()
    lam = 0.8  # 1/lam = 1.25 binds: least squares wants a larger cubic coefficient
    free = np.linalg.lstsq(x, y, rcond=None)[0]
    assert np.abs(free).max() > 1 / lam
    _, w, _ = train(study, "adamw", lr=0.01, weight_decay=lam, decay="decoupled", steps=20000,
                    fit_intercept=False)
    boxed = lsq_linear(x, y[:, 0], bounds=(-1 / lam, 1 / lam)).x[:, None]
    np.testing.assert_allclose(w, boxed, atol=3e-3)
    assert np.abs(w).max() <= 1 / lam + 3e-3


BAD = [
    (["--optimizers", "adam,rmsprop"], "unknown optimizer 'rmsprop'"),
    (["--backend", "jax"], "unknown backend 'jax'"),
    (["--steps", "0"], "steps must be an integer >= 1"),
    (["--lr", "-0.1"], "lr must be a finite number > 0"),
    (["--lr", "inf"], "lr must be a finite number > 0"),
    (["--lr", "nan"], "lr must be a finite number > 0"),
    (["--weight-decay", "inf"], "weight decay must be a finite number >= 0"),
    (["--seed", "-1"], "seed must be an integer >= 0"),
    (["--studies", "cube"], "unknown study 'cube'"),
    (["--init", "ones"], "unknown init 'ones'"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["demo", "--quiet", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_out_is_left_untouched(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli.main(["demo", "--quiet", "--steps", "5", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["demo", "--quiet", "--steps", "5", "--out", str(blocker / "run")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    from adamkit.lab import plots

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "weight_norms", broken)
    with pytest.raises(RuntimeError):
        cli.main(["demo", "--quiet", "--steps", "5", "--out", str(tmp_path / "run")])
    assert list(tmp_path.iterdir()) == []


def test_both_backends_yield_the_same_flat_records():
    config = dict(steps=30, optimizers=("adam-l2", "adamw"), studies=("poly",))
    torch_rows = demo.run(demo.DemoConfig(backend="torch", **config))["records"]
    numpy_rows = demo.run(demo.DemoConfig(backend="numpy", **config))["records"]
    key = lambda r: (r["optimizer"], r["step"], r["split"], r["metric"])  # noqa: E731
    shared = {key(r) for r in numpy_rows}
    assert len(shared) == 2 * 30 * 4 and shared <= {key(r) for r in torch_rows}
    by_key = {key(r): r for r in torch_rows}
    for r in numpy_rows:
        t = by_key[key(r)]
        assert {k: r[k] for k in FIELDS if k != "value"} == {k: t[k] for k in FIELDS if k != "value"}
        np.testing.assert_allclose(r["value"], t["value"], rtol=1e-9, atol=1e-12)
