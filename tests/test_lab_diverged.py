"""A run whose weight-decay factor leaves (0, 1] or whose loss is not finite is recorded as
diverged, with its reason, by every command: never a traceback, and a sweep finishes."""

import csv
import json
import types

import pytest

from adamkit.lab import cli
from adamkit.lab import run as run_module
from adamkit.lab.run import RunConfig, run


def test_a_decay_factor_outside_0_1_stops_the_run_as_diverged():
    # AdamW's decoupled factor 1 - lr*wd = 1 - 3*0.5 = -0.5 at the first step
    result = run(RunConfig(task="line", optimizer="adamw", lr=3.0, weight_decay=0.5, steps=5))
    assert result.diverged and result.diverged_at == 1
    assert result.diverged_reason == "weight decay factor -0.5 outside (0, 1] (lr 3 × weight decay 0.5) at step 1"
    assert result.summary()["diverged_reason"] == result.diverged_reason


def test_independent_decay_uses_the_schedule_multiplier():
    # independent: 1 - eta*wd with eta = lr/lr0 = 1 at the start: 1 - 1.5 = -0.5, whatever the lr
    result = run(RunConfig(task="line", optimizer="adamw-independent", lr=1e-3, weight_decay=1.5, steps=5))
    assert result.diverged_reason.startswith("weight decay factor -0.5 outside (0, 1]")
    fine = run(RunConfig(task="line", optimizer="adamw-independent", lr=3.0, weight_decay=0.5, steps=3))
    assert fine.diverged_reason is None or "weight decay" not in fine.diverged_reason


def test_a_non_finite_loss_is_a_reason_too():
    result = run(RunConfig(task="line", optimizer="sgd", lr=1e3, steps=200))
    assert result.diverged and result.diverged_reason.startswith("loss became ")
    assert result.diverged_reason.endswith(f"at step {result.diverged_at}")


def test_an_optimizer_that_refuses_the_factor_itself_is_a_diverged_run(monkeypatch):
    """The lab does not rely on the optimizer's ValueError, nor break when it comes."""
    from adamkit.lab import optimizers

    build = optimizers.build

    def refusing(*args, **kwargs):
        opt = build(*args, **kwargs)

        def step(self, closure=None):
            raise ValueError("weight decay would multiply the weights by -0.5 (outside (0, 1]): details")

        opt.step = types.MethodType(step, opt)
        return opt

    monkeypatch.setattr(optimizers, "build", refusing)
    monkeypatch.setattr(run_module, "decay_factor_problem", lambda groups: None)
    result = run(RunConfig(task="line", optimizer="adamw", lr=1e-2, steps=5))
    assert result.diverged and result.diverged_at == 1
    assert result.diverged_reason == "weight decay would multiply the weights by -0.5 (outside (0, 1]) at step 1"


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_demo_with_a_huge_lr_finishes_and_names_the_diverged_runs(tmp_path, capsys, backend):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--lr", "150", "--steps", "5", "--studies", "poly", "--optimizers", "adam,adamw",
                     "--backend", backend, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    reason = "weight decay factor -149 outside (0, 1] (lr 150 × weight decay 1) at step 1"
    assert f"AdamW (decoupled) (lr=150): {reason}" in printed
    summary = json.loads((out / "summary.json").read_text())
    run = summary["studies"]["poly"]["adamw"]
    assert run["diverged"] and run["diverged_reason"] == reason
    assert f"diverged: {reason}" in (out / "report.html").read_text()


def test_compare_names_the_diverged_runs(tmp_path, capsys):
    out = tmp_path / "compare"
    assert cli.main(["compare", "line", "--optimizers", "adam,adamw", "--lr", "30", "--weight-decay", "0.1",
                     "--steps", "5", "--seeds", "2", "--jobs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    reason = "weight decay factor -2 outside (0, 1] (lr 30 × weight decay 0.1) at step 1"
    assert f"adamw diverged on 2 of 2 seeds (seed 0: {reason}; seed 1: {reason})" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"]["adamw"]["diverged_reasons"] == [f"seed 0: {reason}", f"seed 1: {reason}"]
    assert all(r["diverged_reason"] == reason for r in summary["runs"] if r["config"]["optimizer"] == "adamw")


def test_a_sweep_with_a_diverging_cell_finishes(tmp_path):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "line", "--optimizers", "adamw", "--lr", "1e-2:3:2", "--weight-decay", "0.5",
                     "--steps", "5", "--schedule", "constant", "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    with open(out / "sweep.csv") as f:
        rows = {r["lr"]: r for r in csv.DictReader(f)}
    reason = "weight decay factor -0.5 outside (0, 1] (lr 3 × weight decay 0.5) at step 1"
    assert rows["3.0"]["status"] == "diverged" and rows["3.0"]["reason"] == reason
    assert rows["0.01"]["status"] == "ok" and rows["0.01"]["reason"] == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["optimizers"]["adamw"]["diverged_runs"] == [
        {"lr": 3.0, "weight_decay": 0.5, "seed": 0, "reason": reason}]
    assert any(reason in f for f in summary["findings"])
    assert reason in (out / "report.html").read_text()

