"""adamkit sweep end to end on a quick task: outputs, resume after SIGKILL, several workers,
PostgreSQL, best-vs-best, bad input."""

import csv
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from matplotlib import image

from adamkit.lab import cli
from adamkit.lab.commands import sweep as sweep_command
from adamkit.lab.sweep import storage as st

POSTGRES = os.environ.get("ADAMKIT_TEST_POSTGRES_URL")
GRID = ["cancer", "--quick", "--optimizers", "adamw,adamw-independent", "--lr", "1e-2:1:3",
        "--weight-decay", "1e-3:1e-1:3", "--quiet"]
CELLS = 2 * 3 * 3
JUST_STARTED = datetime.timedelta(seconds=0.25)  # a trial of the kill tests' length takes about a second


def _sweep(out, *extra):
    return cli.main(["sweep", *GRID, "--jobs", "1", "--out", str(out), *extra])


def _study(out, url=None):
    spec = json.loads((Path(out) / "sweep.json").read_text())
    storage = st.open_storage(url or st.default_url(out))
    return st.open_study(storage, spec["study"])


def _states(study):
    counts = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _complete_cells(study):
    return sorted(t.user_attrs["cell"] for t in study.trials if t.state.name == "COMPLETE")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "grid"
    assert _sweep(out) == 0
    return out


def test_grid_writes_heatmaps_csv_and_report(finished):
    names = {p.name for p in finished.iterdir()}
    assert {"sweep.json", "sweep.db", "sweep.csv", "summary.json", "heatmaps.png", "report.html", "runs"} <= names
    with open(finished / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == CELLS and {r["role"] for r in rows} == {"grid"}
    assert list(rows[0]) == ["role", "optimizer", "lr", "weight_decay", "decay", "seed", "metric", "split", "val",
                             "test", "status", "seconds", "run_dir", "reason"]
    modes = {(r["optimizer"], r["decay"]) for r in rows}
    assert modes == {("adamw", "decoupled"), ("adamw-independent", "independent")}
    assert {r["metric"] for r in rows} == {"error"} and {r["split"] for r in rows} == {"val"}
    for r in rows:
        assert (Path(r["run_dir"]) / "metrics.csv").is_file() and (Path(r["run_dir"]) / "summary.json").is_file()
    pixels = image.imread(finished / "heatmaps.png")
    assert pixels.shape[1] > 2 * pixels.shape[0] and pixels[..., :3].std() > 0.05
    summary = json.loads((finished / "summary.json").read_text())  # strict JSON: no NaN
    for name in ("adamw", "adamw-independent"):
        o = summary["optimizers"][name]
        assert o["best"]["lr"] in summary["lrs"] and o["best"]["weight_decay"] in summary["weight_decays"]
        assert 0 <= o["best"]["val"] < 0.37  # beats the majority class
        assert len(o["rows"]) == 3 and set(o["edge_slope"]) == {"mean", "std", "n"}
    report = (finished / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 1 and "Best configuration per optimizer" in report
    assert all(f.split(":")[0] in report for f in summary["findings"])
    assert summary["trials_in_storage"] == CELLS


def test_advise_reads_the_finished_sweep(finished, capsys):
    assert cli.main(["advise", "--sweep", str(finished), "--lr", "0.1"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((finished / "summary.json").read_text())
    best = summary["optimizers"]["adamw"]["best"]
    assert f"- adamw: best cell lr {best['lr']:.3g}, weight decay {best['weight_decay']:.3g}" in out
    assert "at lr 0.1 (the swept row nearest 0.1)" in out


def test_rerun_of_a_finished_sweep_trains_nothing(finished):
    before = _states(_study(finished))
    assert _sweep(finished) == 0
    assert _states(_study(finished)) == before == {"COMPLETE": CELLS}


def test_a_different_grid_in_the_same_directory_is_refused(finished, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in finished.iterdir()}
    assert cli.main(["sweep", *GRID, "--seeds", "2", "--out", str(finished)]) == 2
    err = capsys.readouterr().err
    assert "holds a different sweep (seeds: saved 1, asked 2)" in err and err.count("\n") == 1
    assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir()} == before


def test_confirm_reruns_best_cells_on_fresh_seeds(finished):
    assert _sweep(finished, "--confirm", "3") == 0
    with open(finished / "sweep.csv") as f:
        confirm = [r for r in csv.DictReader(f) if r["role"] == "confirm"]
    assert len(confirm) == 2 * 3 and {int(r["seed"]) for r in confirm} == {1000, 1001, 1002}
    summary = json.loads((finished / "summary.json").read_text())
    for name, c in summary["confirm"]["optimizers"].items():
        best = summary["optimizers"][name]["best"]
        assert (c["lr"], c["weight_decay"]) == (best["lr"], best["weight_decay"]) and c["test"]["n"] == 3
    (pair,) = summary["confirm"]["pairs"]
    assert pair["shared_seeds"] == 3 and 0 <= pair["a_better"] <= 3
    report = (finished / "report.html").read_text()
    assert "Best vs best on fresh seeds" in report and "On 3 fresh seeds, test error" in report
    assert _states(_study(finished)) == {"COMPLETE": CELLS + 6}


def _cli(*args, env=None):
    src = Path(__file__).parent.parent / "src"
    return subprocess.Popen([sys.executable, "-m", "adamkit", "sweep", *args],
                            env={**os.environ, "PYTHONPATH": str(src), **(env or {})})


def _signal_inside_a_trial(proc, out, sig, completed):
    """Send ``sig`` once ``completed`` trials are done and the next has just started: a trial
    takes about a second, so the signal lands inside it, whatever the machine's speed."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None
        if (Path(out) / "sweep.json").exists():
            trials = _study(out).trials
            running = [t for t in trials if t.state.name == "RUNNING"]
            done = sum(t.state.name == "COMPLETE" for t in trials)
            if running and done >= completed and datetime.datetime.now() - running[0].datetime_start < JUST_STARTED:
                proc.send_signal(sig)
                return
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun(tmp_path):
    out = tmp_path / "killed"
    # longer runs, so that the kill lands inside a trial
    grid = [*GRID[:1], "--steps", "3000", *GRID[2:]]
    proc = _cli(*grid, "--jobs", "1", "--heartbeat", "1", "--out", str(out))
    _signal_inside_a_trial(proc, out, signal.SIGKILL, completed=2)
    proc.wait()
    at_kill = _states(_study(out))
    assert at_kill.get("RUNNING") == 1 and 2 <= at_kill.get("COMPLETE", 0) < CELLS
    assert cli.main(["sweep", *grid, "--jobs", "1", "--heartbeat", "1", "--out", str(out)]) == 0
    study = _study(out)
    assert _states(study) == {"COMPLETE": CELLS, "FAIL": 1}  # the killed trial failed and its cell ran again
    assert len(set(_complete_cells(study))) == CELLS
    with open(out / "sweep.csv") as f:
        assert len(list(csv.DictReader(f))) == CELLS


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_fails_the_interrupted_one(tmp_path):
    out = tmp_path / "interrupted"
    grid = [*GRID[:1], "--steps", "3000", *GRID[2:]]
    src = Path(__file__).parent.parent / "src"
    # Ctrl-C as a terminal delivers it: a shell's background job would start with SIGINT ignored
    proc = subprocess.Popen([sys.executable, "-m", "adamkit", "sweep", *grid, "--jobs", "1", "--out", str(out)],
                            env={**os.environ, "PYTHONPATH": str(src)}, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _signal_inside_a_trial(proc, out, signal.SIGINT, completed=1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; finished trials are kept" in err and "Traceback" not in err
    at_stop = _states(_study(out))
    assert at_stop.get("FAIL") == 1 and "RUNNING" not in at_stop  # no heartbeat to wait for
    assert cli.main(["sweep", *grid, "--jobs", "1", "--out", str(out)]) == 0
    assert _states(_study(out)) == {"COMPLETE": CELLS, "FAIL": 1}


def test_two_workers_on_the_embedded_storage(tmp_path):
    out = tmp_path / "two"
    assert cli.main(["sweep", *GRID, "--jobs", "2", "--out", str(out)]) == 0
    study = _study(out)
    assert _states(study) == {"COMPLETE": CELLS} and len(set(_complete_cells(study))) == CELLS


@pytest.mark.skipif(not POSTGRES, reason="ADAMKIT_TEST_POSTGRES_URL is not set "
                    "(.ci/run starts a local PostgreSQL server and sets it)")
def test_two_machines_on_postgres(tmp_path):
    import optuna

    name = json.loads(_prepare_only(tmp_path / "probe"))["study"]
    try:  # a database kept from an earlier run of this test holds the finished study
        optuna.delete_study(study_name=name, storage=st.open_storage(POSTGRES))
    except KeyError:
        pass
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [_cli(*GRID, "--jobs", "1", "--storage", POSTGRES, "--out", str(o)) for o in outs]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    study = _study(outs[0], POSTGRES)
    assert _states(study) == {"COMPLETE": CELLS} and len(set(_complete_cells(study))) == CELLS
    ran = [len(list((o / "runs").iterdir())) if (o / "runs").exists() else 0 for o in outs]
    assert sum(ran) == CELLS and all(ran), ran  # the grid was divided, nothing ran twice
    for o in outs:  # each machine writes the whole sweep's results
        with open(o / "sweep.csv") as f:
            assert len(list(csv.DictReader(f))) == CELLS


def _prepare_only(out):
    """The study name this grid gets, without training."""

    parser = cli.parser()
    args = parser.parse_args(["sweep", *GRID, "--out", str(out)])
    spec = sweep_command.spec_from(args)
    return json.dumps({"study": spec.study_name})


@pytest.mark.parametrize("extra, message", [
    (["--lr", "1e-3:1e-1"], "--lr '1e-3:1e-1' is malformed"),
    (["--weight-decay", "1e-3:1e-1:0"], "n must be >= 1"),
    (["--weight-decay", "1e-3:1e-3:2"], "--weight-decay '1e-3:1e-3:2' gives 0.001 more than once"),
    (["--lr", "1e-3:1.000001e-3:2"], "--lr '1e-3:1.000001e-3:2' gives 0.001 more than once (values are rounded"),
    (["--optimizers", "adamw,lion"], "unknown optimizer 'lion'"),
    (["--lr", "1e-3:1e-1:100000000"], "n must be >= 1 and <= 1000, got 100000000"),
    (["--seeds", "100000000000"], "the grid has 1800000000000 cells (optimizers × lrs × weight decays × seeds); "
                                  "at most 100000"),
    (["--optimizers", "adam"], "unknown optimizer 'adam'; expected one of adam-l2"),
    (["--seeds", "0"], "seeds must be an integer >= 1"),
    (["--confirm", "1"], "confirm must be an integer >= 2"),
    (["--jobs", "0"], "jobs must be an integer >= 1"),
    (["--storage", "mysql://u:pw@h/db"], "unknown storage scheme 'mysql'"),
    (["--storage", "postgresql://nobody:secret@127.0.0.1:1/x"], "cannot open storage 'postgresql://nobody:***@"),
    (["--storage", "postgresql://u:secret@[::1/db"], "--storage 'postgresql://u:***@[::1/db' is malformed"),
    (["--storage", "sqlite://u:secret@/x.db"], "'sqlite://u:***@/x.db': a SQLite URL names a file"),
    (["--storage", "postgresql://u:sec@ret@127.0.0.1:1/db"], "holds an '@'; write it as %40"),
    (["--storage-file", "/nonexistent/url"], "--storage-file '/nonexistent/url' cannot be read"),
    (["--storage", "sqlite:///x.db", "--storage-file", "f"], "--storage and --storage-file: give one of them"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert cli.main(["sweep", *GRID, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "secret" not in err and "ret@" not in err
    assert not out.exists()


def test_the_storage_url_from_a_file_or_the_environment(tmp_path, capsys, monkeypatch):
    """Off the command line, where every local user would see the password in the process list."""
    out, url = tmp_path / "bad", "mysql://u:hunter2@h/db"
    monkeypatch.setenv("ADAMKIT_STORAGE_URL", url)
    assert cli.main(["sweep", *GRID, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown storage scheme 'mysql' in --storage 'mysql://u:***@h/db'" in err and "hunter2" not in err
    monkeypatch.delenv("ADAMKIT_STORAGE_URL")
    (tmp_path / "url").write_text(f"\n{url}\n")
    assert cli.main(["sweep", *GRID, "--storage-file", str(tmp_path / "url"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown storage scheme 'mysql'" in err and "hunter2" not in err and err.count("\n") == 1
    assert not out.exists()


def test_unknown_task(tmp_path, capsys):
    assert cli.main(["sweep", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


@pytest.mark.filterwarnings("error::UserWarning")  # nothing for the user to act on
def test_tpe_search_resumes_to_the_asked_number_of_trials(tmp_path):
    out = tmp_path / "tpe"
    argv = ["sweep", *GRID, "--search", "tpe", "--trials", "4", "--jobs", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4 and {r["role"] for r in rows} == {"tpe"}
    assert all(1e-2 <= float(r["lr"]) <= 1 and 1e-3 <= float(r["weight_decay"]) <= 1e-1 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert all(len(s["points"]) == 4 and s["best"] for s in summary["optimizers"].values())
    assert "TPE search" in (out / "report.html").read_text() and (out / "search.png").is_file()
    assert cli.main(argv) == 0  # finished: nothing more is trained
    with open(out / "sweep.csv") as f:
        assert list(csv.DictReader(f)) == rows


def _assert_dashboard_ready(trial, task="cancer"):
    """What optuna-dashboard shows: the learning curve as intermediate values, the settings as attributes."""
    steps = list(trial.intermediate_values)
    assert steps and steps == sorted(steps) and len(set(steps)) == len(steps)
    outcome, attrs = trial.user_attrs["outcome"], trial.user_attrs
    assert attrs["task"] == task and attrs["optimizer"] in ("adamw", "adamw-independent")
    assert attrs["decay"] in ("decoupled", "independent") and attrs["lr"] > 0 and attrs["weight_decay"] > 0
    if outcome.get("diverged") or any(s.get("diverged") for s in outcome.get("seeds", ())):
        assert attrs["diverged"]
    else:
        assert "diverged" not in attrs
        assert trial.intermediate_values[steps[-1]] == pytest.approx(trial.value)


def test_grid_trials_open_in_optuna_dashboard(finished):
    trials = [t for t in _study(finished).trials if t.state.name == "COMPLETE"]
    assert len(trials) >= CELLS
    for t in trials:
        _assert_dashboard_ready(t)
        assert isinstance(t.user_attrs["seed"], int)


def test_tpe_trials_open_in_optuna_dashboard(tmp_path):
    out = tmp_path / "tpe"
    assert cli.main(["sweep", *GRID, "--search", "tpe", "--trials", "2", "--jobs", "1", "--out", str(out)]) == 0
    storage = st.open_storage(st.default_url(out))
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(storage) if "-tpe-" in s.study_name]
    assert len(names) == 2
    for name in names:
        trials = [t for t in st.open_study(storage, name).trials if t.state.name == "COMPLETE"]
        assert len(trials) == 2
        for t in trials:
            _assert_dashboard_ready(t)
            assert t.user_attrs["seeds"] == 1
