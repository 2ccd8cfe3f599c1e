"""The sweep's storage: every cell exactly once in the results, through kills, restarts and
several workers, on the embedded SQLite storage and on PostgreSQL.

Training is replaced by a cheap function with known numbers (tests/sweep_fakes.py): what
is under test here is the bookkeeping, not the training.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from optuna.trial import TrialState

import sweep_fakes
from adamkit.lab.sweep import runner
from adamkit.lab.sweep import storage as st
from adamkit.lab.sweep.grid import SweepSpec

POSTGRES = os.environ.get("ADAMKIT_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="ADAMKIT_TEST_POSTGRES_URL is not set "
                                    "(.ci/run starts a local PostgreSQL server and sets it)")
TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


def _spec(task="fake", **kw):
    return SweepSpec(task, ("adamw", "adam-l2"), (1e-3, 1e-2, 1e-1), (1e-4, 1e-3, 1e-2), **{"seeds": 2, **kw})


def _sweep(out, spec, jobs=1, url=None):
    storage, study = runner.prepare(out, spec, url, heartbeat=1)
    rows = runner.execute(storage, study, spec.cells(), sweep_fakes.objective, out, jobs=jobs, heartbeat=1)
    return storage, study, rows


def _check_exactly_once(study, spec):
    """Every cell of the grid has exactly one complete trial, and nothing else is complete."""
    rows = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["cell"] for t in rows) == sorted(c.key for c in spec.cells())
    return rows


def test_one_worker_runs_every_cell_once(tmp_path):
    spec = _spec()
    _, study, rows = _sweep(tmp_path, spec)
    _check_exactly_once(study, spec)
    assert set(sweep_fakes.executions(tmp_path).values()) == {(1, 1)}
    best = min(rows, key=lambda t: t.value)
    assert best.user_attrs["seed"] == 0
    assert best.user_attrs["lr"] * best.user_attrs["weight_decay"] == pytest.approx(1e-4)


def test_rerun_of_a_finished_sweep_runs_nothing(tmp_path):
    spec = _spec()
    _sweep(tmp_path, spec)
    before = (tmp_path / "executions.log").read_text()
    _, study, _ = _sweep(tmp_path, spec)
    assert (tmp_path / "executions.log").read_text() == before
    assert len(study.trials) == len(spec.cells())


def test_a_moved_sweep_directory_keeps_its_trials(tmp_path):
    spec = _spec()
    _sweep(tmp_path / "here", spec)
    (tmp_path / "here").rename(tmp_path / "there")
    before = (tmp_path / "there" / "executions.log").read_text()
    _, study, _ = _sweep(tmp_path / "there", spec)
    assert (tmp_path / "there" / "executions.log").read_text() == before and len(study.trials) == len(spec.cells())


def test_a_directory_killed_before_its_settings_were_saved_is_continued(tmp_path):
    spec = _spec()
    runner.prepare(tmp_path, spec, heartbeat=1)
    (tmp_path / "sweep.json").unlink()  # as if killed between opening the storage and saving the settings
    _, study, _ = _sweep(tmp_path, spec)
    _check_exactly_once(study, spec)


def test_a_different_sweep_in_the_same_directory_is_refused(tmp_path):
    _sweep(tmp_path, _spec())
    before = sorted(p.name for p in tmp_path.iterdir())
    for other in (_spec(task="other"), _spec(seeds=3), _spec(steps=10)):
        with pytest.raises(runner.SweepMismatch, match="holds a different sweep"):
            runner.prepare(tmp_path, other)
    with pytest.raises(runner.SweepMismatch, match="keeps its trials in"):
        runner.prepare(tmp_path, _spec(), f"sqlite:///{tmp_path}/elsewhere.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_two_workers_on_the_embedded_storage(tmp_path):
    spec = _spec()
    _, study, _ = _sweep(tmp_path, spec, jobs=2)
    _check_exactly_once(study, spec)
    assert set(sweep_fakes.executions(tmp_path).values()) == {(1, 1)}  # nothing ran twice
    assert len(study.trials) == len(spec.cells())


def _worker_command(out, url, seconds):
    code = ("import sys; from pathlib import Path; import sweep_fakes; from adamkit.lab.sweep import runner; "
            "from adamkit.lab.sweep.grid import SweepSpec; "
            f"spec = SweepSpec('fake', ('adamw', 'adam-l2'), (1e-3, 1e-2, 1e-1), (1e-4, 1e-3, 1e-2), seeds=2); "
            f"s, study = runner.prepare({str(out)!r}, spec, {url!r}, heartbeat=1); "
            f"runner.execute(s, study, spec.cells(), sweep_fakes.objective, {str(out)!r}, heartbeat=1)")
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{SRC}", "FAKE_TRIAL_SECONDS": str(seconds)}
    return [sys.executable, "-c", code], env


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_mid_trial_then_rerun(tmp_path):
    spec = _spec()
    cmd, env = _worker_command(tmp_path, None, seconds=0.4)
    proc = subprocess.Popen(cmd, env=env)
    log = tmp_path / "executions.log"

    def mid_trial():  # some trials finished, one started and not finished
        counts = sweep_fakes.executions(tmp_path) if log.exists() else {}
        return sum(e for _, e in counts.values()) >= 3 and any(s > e for s, e in counts.values())

    _wait_for(mid_trial)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = [k for k, (s, e) in sweep_fakes.executions(tmp_path).items() if s > e]
    assert len(killed) == 1
    _, study, _ = _sweep(tmp_path, spec)  # waits for the killed trial's heartbeat to go stale, reruns it
    _check_exactly_once(study, spec)
    counts = sweep_fakes.executions(tmp_path)
    assert counts[killed[0]] == (2, 1)
    assert all(c == (1, 1) for k, c in counts.items() if k != killed[0])
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert [t.user_attrs["cell"] for t in failed] == killed


@needs_postgres
def test_two_machines_share_one_grid_on_postgres(tmp_path):
    spec = _spec(task=f"fake-{uuid.uuid4().hex[:8]}")  # a fresh study in a shared database
    code = ("import sweep_fakes; from adamkit.lab.sweep import runner; from adamkit.lab.sweep.grid import SweepSpec; "
            "import json, sys; spec = SweepSpec.from_dict(json.loads(sys.argv[1])); "
            "s, study = runner.prepare(sys.argv[2], spec, sys.argv[3], heartbeat=1); "
            "runner.execute(s, study, spec.cells(), sweep_fakes.objective, sys.argv[2], heartbeat=1)")
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{SRC}", "FAKE_TRIAL_SECONDS": "0.1"}
    import json
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(spec.as_dict()), str(o), POSTGRES], env=env)
             for o in outs]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    storage = st.open_storage(POSTGRES)
    study = st.open_study(storage, spec.study_name)
    _check_exactly_once(study, spec)
    assert len(study.trials) == len(spec.cells())
    runs = [sweep_fakes.executions(o) for o in outs]
    assert all(runs), "each machine ran a share of the grid"
    assert sorted([*runs[0], *runs[1]]) == sorted(c.key for c in spec.cells())  # none ran on both


def test_bad_storage_urls(tmp_path):
    with pytest.raises(st.StorageError, match="unknown storage scheme 'mysql'"):
        runner.prepare(tmp_path / "a", _spec(), "mysql://u:secret@host/db")
    with pytest.raises(st.StorageError, match="cannot open storage 'postgresql://nobody:\\*\\*\\*@127.0.0.1:1/x'"):
        runner.prepare(tmp_path / "b", _spec(), "postgresql://nobody:secret@127.0.0.1:1/x")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert st.redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_a_grid_with_a_repeated_value_is_refused_and_a_repeated_cell_runs_once(tmp_path):
    with pytest.raises(ValueError, match="weight decay .0.001,0.001. gives 0.001 more than once"):
        SweepSpec("fake", ("adamw",), (1e-2,), (1e-3, 1e-3)).validate()
    spec = _spec()
    storage, study = runner.prepare(tmp_path, spec, heartbeat=1)
    cells = spec.cells() + spec.cells()[:2]  # two cells asked for twice
    done = []
    worker = threading.Thread(target=lambda: done.append(runner.execute(
        storage, study, cells, sweep_fakes.objective, tmp_path, heartbeat=1)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "the sweep never finished"
    assert len(done[0]) == len(spec.cells())
    _check_exactly_once(study, spec)


def test_two_different_sweeps_started_at_once_in_one_directory(tmp_path, monkeypatch):
    """The second passes the directory check before the first saves its settings (the worst
    interleaving, made certain): it is refused, not merged."""
    first, second = _spec(), _spec(seeds=3)
    open_storage = st.open_storage

    def first_finishes_meanwhile(url, heartbeat=st.DEFAULT_HEARTBEAT):
        monkeypatch.setattr(st, "open_storage", open_storage)
        runner.prepare(tmp_path, first, heartbeat=1)
        return open_storage(url, heartbeat)

    monkeypatch.setattr(st, "open_storage", first_finishes_meanwhile)
    with pytest.raises(runner.SweepMismatch, match=r"holds a different sweep \(seeds: saved 2, asked 3\)"):
        runner.prepare(tmp_path, second, heartbeat=1)
    import json
    assert SweepSpec.from_dict(json.loads((tmp_path / "sweep.json").read_text())["spec"]) == first
    storage = st.open_storage(st.default_url(tmp_path))
    import optuna
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [first.study_name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _open_at_once(url, barrier, results):
    barrier.wait()
    try:
        storage = st.open_storage(url, 1)
        st.open_study(storage, "same")
        results.put("ok")
    except BaseException as e:  # noqa: B036 -- reported to the test
        results.put(f"{type(e).__name__}: {e}")


def test_the_same_storage_opened_by_many_processes_at_once(tmp_path):
    """Optuna creates its tables on first use; starters at the same moment must not collide
    (SQLite: "table studies already exists")."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(4):
        url = f"sqlite:///{tmp_path}/{attempt}/sweep.db"
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [results.get(timeout=5) for _ in procs] == ["ok"] * 3


def test_a_planted_lock_symlink_is_not_followed(tmp_path):
    out, outside = tmp_path / "sweep", tmp_path / "elsewhere" / "victim"
    out.mkdir()
    outside.parent.mkdir()
    (out / "sweep.db.lock").symlink_to(outside)
    with pytest.raises(st.StorageError, match="sweep.db.lock' is a symbolic link"):
        runner.prepare(out, _spec(), heartbeat=1)
    assert not outside.exists()


@pytest.mark.parametrize("url, message", [
    ("postgresql://u:pw@[::1/db", "--storage 'postgresql://u:***@[::1/db' is malformed"),
    ("sqlite://u:secretpw@/x.db", "a SQLite URL names a file, no host, user or password"),
    ("postgresql://u:sec@ret@localhost/db", "'postgresql://u:***@localhost/db': the user name or password holds "
                                            "an '@'; write it as %40"),
    ("postgresql://u:pw@host:port/db", "is malformed"),
])
def test_malformed_urls_are_refused_without_the_password(tmp_path, url, message):
    with pytest.raises(st.StorageError) as e:
        runner.prepare(tmp_path / "x", _spec(), url)
    assert message in str(e.value)
    for secret in ("secretpw", "sec@ret", "ret@", ":pw@"):
        assert secret not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_driver_messages_are_scrubbed_of_the_password():
    url = "postgresql://u:hunter2@h/db"
    assert st.scrub("password authentication failed: hunter2", url) == "password authentication failed: ***"
    assert st.redact("postgresql://u:a@b@h/db") == "postgresql://u:***@h/db"


def test_a_trial_failed_as_stale_while_its_worker_was_paused_is_dropped_not_fatal(tmp_path):
    """What another worker's fail_stale_trials does to a worker paused past three heartbeats,
    made certain: the paused worker's result is dropped, its cell runs again, the sweep ends."""
    spec = _spec()
    storage, study = runner.prepare(tmp_path, spec, heartbeat=1)
    paused = spec.cells()[3]

    def objective(cell, run_dir):
        if cell == paused and not any(t.state.name == "FAIL" for t in study.get_trials(deepcopy=False)):
            (trial,) = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        return sweep_fakes.objective(cell, run_dir)

    rows = runner.execute(storage, study, spec.cells(), objective, tmp_path, heartbeat=1)
    assert len(rows) == len(spec.cells())
    _check_exactly_once(study, spec)
    assert [t.user_attrs["cell"] for t in study.trials if t.state.name == "FAIL"] == [paused.key]
    assert sweep_fakes.executions(tmp_path)[paused.key] == (2, 2)


def test_a_worker_stopped_past_three_heartbeats_then_resumed(tmp_path):
    """SIGSTOP (a laptop lid, a paused VM) for longer than three heartbeats: the other worker
    takes the cell over; the resumed one drops its result and both finish."""
    spec = _spec()
    log = tmp_path / "executions.log"
    cmd, env = _worker_command(tmp_path, None, seconds=0.3)
    first = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: log.exists() and any(s > e for s, e in sweep_fakes.executions(tmp_path).values()))
    first.send_signal(signal.SIGSTOP)
    second = subprocess.Popen(cmd, env=env)
    try:
        # the other worker fails the stopped one's trial once its heartbeat is 3 s old, and reruns it
        _wait_for(lambda: any(s >= 2 for s, _ in sweep_fakes.executions(tmp_path).values()), timeout=90)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.wait(timeout=120) == 0
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    storage = st.open_storage(st.default_url(tmp_path))
    study = st.open_study(storage, spec.study_name)
    _check_exactly_once(study, spec)


def test_a_search_trial_failed_as_stale_while_its_worker_was_paused_is_dropped_not_fatal(tmp_path):
    from adamkit.lab.sweep import search

    spec = SweepSpec("fake", ("adamw",), (1e-3, 1e-1), (1e-4, 1e-2), search="tpe", trials=4)
    storage = st.open_storage(st.default_url(tmp_path), 1)
    taken = []

    def train(cell, run_dir):
        if not taken:  # what another worker's fail_stale_trials does to a paused one's trial
            study = st.open_study(storage, search.study_name(spec, "adamw"))
            (trial,) = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            taken.append(trial.number)
        return sweep_fakes.objective(cell, run_dir)

    found = search.search(storage, spec, train, tmp_path, jobs=1, heartbeat=1)
    assert len(found["adamw"]) == 4 and taken == [0]
    study = st.open_study(storage, search.study_name(spec, "adamw"))
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 4 + ["FAIL"]


@needs_postgres
def test_a_new_postgres_database_opened_by_many_machines_at_once():
    """PostgreSQL: a duplicate pg_type key while creating Optuna's schema, unless locked."""
    import multiprocessing

    import sqlalchemy

    schema = f"race_{uuid.uuid4().hex[:8]}"  # a fresh, empty schema stands in for a new database
    admin = sqlalchemy.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        ctx = multiprocessing.get_context("fork")
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [results.get(timeout=5) for _ in procs] == ["ok"] * 3
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
