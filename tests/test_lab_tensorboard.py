"""--tensorboard DIR on run, compare and sweep: the run's records as scalars, its settings as hparams;
without the tensorboard package, one line and exit code 2 before anything is trained."""

import csv
import sys

import pytest

from adamkit.lab import cli

COMMANDS = {
    "run": ["run", "cancer", "--quick", "--steps", "20", "--quiet"],
    "compare": ["compare", "cancer", "--quick", "--steps", "20", "--optimizers", "adamw", "--seeds", "1",
                "--jobs", "1", "--quiet"],
    "sweep": ["sweep", "cancer", "--quick", "--steps", "20", "--optimizers", "adamw", "--lr", "1e-2",
              "--weight-decay", "1e-2", "--jobs", "1", "--quiet"],
}


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_without_tensorboard_the_command_stops_before_training(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    out = tmp_path / "out"
    assert cli.main([*COMMANDS[command], "--out", str(out), "--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tensorboard" in err and "pip install tensorboard" in err
    assert not out.exists() and not (tmp_path / "tb").exists()


def test_run_scalars_equal_its_metrics_csv(tmp_path):
    pytest.importorskip("tensorboard")
    out, tb = tmp_path / "run", tmp_path / "tb"
    assert cli.main([*COMMANDS["run"], "--out", str(out), "--tensorboard", str(tb)]) == 0
    (run_dir,) = tb.iterdir()
    assert run_dir.name == "cancer-adamw-lr0.05-wd0.2-zeros-constant-fp32-seed0"
    with open(out / "metrics.csv") as f:
        records = list(csv.DictReader(f))
    scalars = _scalars(run_dir)
    curves = {k: v for k, v in scalars.items() if not k[0].startswith("final/")}
    expected = {(f"{r['split']}/{r['metric']}", int(r["step"])): float(r["value"]) for r in records}
    assert curves.keys() == expected.keys()
    assert all(curves[k] == pytest.approx(v, rel=1e-6, abs=1e-30) for k, v in expected.items())
    last = max(int(r["step"]) for r in records)
    assert scalars[("final/test/accuracy", 0)] == pytest.approx(expected[("test/accuracy", last)], rel=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert info.hparams["optimizer"].string_value == "adamw" and info.hparams["lr"].number_value == 0.05
    assert info.hparams["task"].string_value == "cancer" and info.hparams["decay"].string_value == "decoupled"


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_compare_and_sweep_write_one_board_per_run(command, tmp_path):
    pytest.importorskip("tensorboard")
    out, tb = tmp_path / "out", tmp_path / "tb"
    assert cli.main([*COMMANDS[command], "--out", str(out), "--tensorboard", str(tb)]) == 0
    (run_dir,) = tb.iterdir()
    scalars = _scalars(run_dir)
    steps = sorted(step for tag, step in scalars if tag == "test/accuracy")
    assert steps and steps[-1] == 20 and ("final/test/accuracy", 0) in scalars


def test_an_unwritable_tensorboard_directory_is_one_line(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    (tmp_path / "file").write_text("")
    out = tmp_path / "out"
    assert cli.main([*COMMANDS["run"], "--out", str(out), "--tensorboard", str(tmp_path / "file" / "tb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tensorboard" in err and "cannot be written" in err
    assert not out.exists()
