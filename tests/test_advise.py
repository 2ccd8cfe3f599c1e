"""adamkit advise: its numbers against hand computation, its conversions, its errors."""

import json

import pytest

from adamkit.lab import advise, cli


def test_normalized_weight_decay_by_hand():
    # N = 51200, B = 128, E = 100: K = 400 iterations per epoch, T = 40,000 in all.
    # lambda = 0.05 * sqrt(128 / (51200 * 100)) = 0.05 / 200 = 2.5e-4 (independent form),
    # 2.5e-4 / lr0 = 0.25 decoupled at lr0 = 1e-3; tau = 1 / 2.5e-4 = 4000 iterations = 10 epochs.
    a = advise.Advice(51200, 128, 100, 1e-3, "decoupled", 0.05)
    assert (a.iters_per_epoch, a.iterations) == (400, 40000)
    assert a.normalized() == pytest.approx(2.5e-4, rel=1e-12)
    assert a.normalized(0.025) == pytest.approx(1.25e-4, rel=1e-12)
    assert a.suggestion == pytest.approx(2.5e-4) and a.in_mode(a.suggestion) == pytest.approx(0.25)
    assert a.timescale_epochs(a.normalized()) == pytest.approx(10)
    # tau between 400 and 40,000 iterations: independent wd in [1/40000, 1/400] = [2.5e-5, 2.5e-3],
    # decoupled [0.025, 2.5] at lr0 = 1e-3
    assert a.window == (pytest.approx(2.5e-5), pytest.approx(2.5e-3))
    text = "\n".join(a.lines())
    assert "suggested weight decay (decoupled): 0.25" in text
    assert "0.125–0.25 (decoupled)" in text and "[0.025, 2.5]" in text
    assert "τ = 4000 iterations = 10 epochs" in text
    assert "same run in the independent form: 0.00025" in text


def test_independent_equals_lr0_times_decoupled():
    kw = dict(dataset_size=60000, batch_size=256, epochs=30, lambda_norm=0.04)
    for lr in (1e-4, 3e-3, 0.1):
        d = advise.Advice(lr=lr, decay="decoupled", **kw)
        i = advise.Advice(lr=lr, decay="independent", **kw)
        assert i.in_mode(i.suggestion) == pytest.approx(lr * d.in_mode(d.suggestion), rel=1e-12)
        lo, hi = d.window
        assert (d.in_mode(lo), d.in_mode(hi)) == (pytest.approx(lo / lr), pytest.approx(hi / lr))


def test_suggestion_moves_to_the_window_edge():
    # Short run: N = 1000, B = 100, E = 10 -> K = 10, T = 100; rule 1: 0.05 * sqrt(100 / 10000) = 0.005,
    # tau = 200 iterations > T: too little decay to matter within the run; moved to 1/T = 0.01.
    short = advise.Advice(1000, 100, 10, 0.01, "independent", 0.05)
    assert short.normalized() == pytest.approx(0.005) and short.suggestion == pytest.approx(0.01)
    assert "moved to its edge (τ = the whole run)" in "\n".join(short.lines())
    # One epoch of a huge dataset: N = 1e6, B = 100, E = 1 -> K = T = 10,000; rule 1: 0.05 / 100 = 5e-4
    # > 1/K = 1e-4 (tau shorter than an epoch): moved to 1e-4.
    long = advise.Advice(1_000_000, 100, 1, 1e-3, "decoupled", 0.05)
    assert long.normalized() == pytest.approx(5e-4) and long.suggestion == pytest.approx(1e-4)
    assert long.in_mode(long.suggestion) == pytest.approx(0.1)
    assert "(τ = one epoch)" in "\n".join(long.lines())


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "128", "--epochs", "10", "--lr", "1e-3"], "missing --dataset-size"),
    (["--dataset-size", "100", "--batch-size", "128", "--epochs", "10", "--lr", "1e-3"], "exceeds the dataset size"),
    (["--dataset-size", "1000", "--batch-size", "10", "--epochs", "10", "--lr", "-1"], "lr must be"),
    (["--dataset-size", "1000", "--batch-size", "10", "--epochs", "nan", "--lr", "1e-3"], "epochs must be"),
    (["--dataset-size", "1000", "--batch-size", "10", "--epochs", "1", "--lr", "1e-3", "--decay", "l2"],
     "expected one of decoupled, independent"),
    (["--sweep", "/nonexistent"], "no finished sweep")])
def test_bad_input(argv, message, capsys):
    assert cli.main(["advise", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_reads_a_sweep_summary(tmp_path, capsys):
    summary = {"task": "mnist1d", "metric": "error", "higher_is_better": False, "seeds": 3, "optimizers": {
        "adamw": {"best": {"lr": 0.03, "weight_decay": 0.01, "val": 0.25, "test": 0.27},
                  "verdict": "the good weight decay moves ...",
                  "rows": [{"lr": 0.003, "best_wd": 0.1, "edge_wd": 1.0},
                           {"lr": 0.03, "best_wd": 0.01, "edge_wd": 0.1}]},
        "adam-l2": {"best": None, "verdict": "", "rows": []}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert cli.main(["advise", "--sweep", str(tmp_path), "--lr", "0.004"]) == 0
    out = capsys.readouterr().out
    assert "adamw: best cell lr 0.03, weight decay 0.01 (val 0.25, test 0.27)" in out
    assert "at lr 0.003 (the swept row nearest 0.004): best weight decay 0.1, too-much-decay edge 1" in out
    assert "adam-l2: every run diverged" in out


@pytest.mark.parametrize("text, message", [
    ("[]", "expected a JSON object, got list"),
    ('{"task": "t", "metric": "error", "higher_is_better": false, "seeds": 1, "optimizers": []}',
     "'optimizers' is [], not a dict"),
    ('{"task": "t", "metric": "error", "higher_is_better": false, "seeds": 1, "optimizers": {"a": '
     '{"best": {"lr": "x", "weight_decay": 0.1}}}}', "a.best.lr is 'x', not a finite number > 0"),
    ('{"task": "t", "metric": "error", "higher_is_better": false, "seeds": 1, "optimizers": {"a": '
     '{"best": null, "rows": [{"lr": -1}]}}}', "a.rows[0].lr is -1, not a finite number > 0"),
    ("[" * 100000, "is not JSON"),
    ("{", "is not JSON"),
])
def test_a_malformed_sweep_summary(tmp_path, capsys, text, message):
    (tmp_path / "summary.json").write_text(text)
    assert cli.main(["advise", "--sweep", str(tmp_path), "--lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("lr", ["inf", "nan", "-1", "0"])
def test_advise_sweep_refuses_a_lr_that_is_not_finite_and_positive(tmp_path, capsys, lr):
    (tmp_path / "summary.json").write_text(json.dumps({"task": "t", "metric": "e", "higher_is_better": False,
                                                       "seeds": 1, "optimizers": {}}))
    assert cli.main(["advise", "--sweep", str(tmp_path), "--lr", lr]) == 2
    err = capsys.readouterr().err
    assert "lr must be a finite number > 0" in err and err.count("\n") == 1


def test_a_sweep_summary_with_a_missing_test_value_and_control_characters(tmp_path, capsys):
    summary = {"task": "t", "metric": "error", "higher_is_better": False, "seeds": 1, "optimizers": {
        "adamw\x1b[2J": {"best": {"lr": 0.1, "weight_decay": 0.01, "val": 0.2, "test": None}, "verdict": "v",
                         "rows": []}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert cli.main(["advise", "--sweep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "- adamw\\x1b[2J: best cell lr 0.1, weight decay 0.01 (val 0.2, test n/a); v" in out
    assert "\x1b" not in out
