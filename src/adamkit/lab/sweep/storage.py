"""Where a sweep's trials live: an Optuna RDB storage, SQLite by default, PostgreSQL for many machines.

Every cell of the grid is enqueued once as a fixed Optuna trial; workers (processes,
machines) claim waiting trials, run them and record the outcome. Four things make
"every cell exactly once in the results" hold where Optuna's ``GridSampler`` does not
(it re-runs end-of-grid points and skips cells when workers' sampler seeds differ):

- enqueuing happens under a lock (a file lock beside the SQLite file, a PostgreSQL
  advisory lock), and only for cells that have no waiting, running or finished trial;
- claims happen under the same lock: Optuna's WAITING -> RUNNING switch is a
  compare-and-set on PostgreSQL but not on SQLite (its driver reads outside the write
  transaction, so two processes could both claim one trial);
- a worker beats a heartbeat for its trial from before it pops it until it tells the
  result, so a trial whose worker was killed (SIGKILL included) goes stale, is marked
  failed by whichever worker looks next, and its cell is enqueued again;
- a worker with nothing left to pop waits for the running trials of other workers
  instead of leaving early, so the sweep ends only when every cell has a result.
"""

import errno
import fcntl
import math
import os
import re
import socket
import sqlite3
import stat
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from adamkit.lab.sweep.grid import Cell

SCHEMES = ("sqlite", "postgresql")
DEFAULT_HEARTBEAT = 10  # seconds; a trial is stale after 3 missed beats


class StorageError(Exception):
    """The storage URL is malformed, of an unknown kind, or unreachable."""


def default_url(out):
    """The embedded storage: one SQLite file in the sweep directory (no server)."""
    return f"sqlite:///{Path(out).resolve() / 'sweep.db'}"


EXPECTED = "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
# scheme://, then the authority up to the path: its user information ends at its *last* '@'
_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)")


def _userinfo(url):
    """``(user, password)`` of ``url`` as written (None where absent), whatever else is malformed."""
    m = _AUTHORITY.match(url)
    if not m or "@" not in m.group(2):
        return None, None
    info = m.group(2).rsplit("@", 1)[0]
    user, colon, password = info.partition(":")
    return user, password if colon else None


def redact(url):
    """``url`` without its password, for messages and the saved settings; a malformed URL or a
    password holding an unencoded ``@`` included."""
    m = _AUTHORITY.match(url)
    if not m or "@" not in m.group(2):
        return url
    info, host = m.group(2).rsplit("@", 1)
    user, colon, _ = info.partition(":")
    return f"{m.group(1)}{user}{':***' if colon else ''}@{host}{url[m.end():]}"


def scrub(text, url):
    """``text`` (a driver's message) with ``url``'s password, and any piece of it, masked."""
    _, password = _userinfo(url)
    if password:
        for secret in sorted({password, unquote(password), *password.split("@")}, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
    return text


def scheme(url):
    """The storage kind of ``url`` (sqlite or postgresql); StorageError, with the password masked,
    for a malformed URL or an unknown kind."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError as e:
        raise StorageError(f"--storage {shown!r} is malformed ({e}); {EXPECTED}") from None
    name = parts.scheme.split("+")[0]
    if name not in SCHEMES:
        raise StorageError(f"unknown storage scheme {name or shown!r} in --storage {shown!r}; {EXPECTED}")
    m = _AUTHORITY.match(url)
    if m and m.group(2).count("@") > 1:
        raise StorageError(f"--storage {shown!r}: the user name or password holds an '@'; write it as %40")
    if name == "sqlite" and m and m.group(2):
        raise StorageError(f"--storage {shown!r}: a SQLite URL names a file, no host, user or password; "
                           "expected sqlite:///PATH")
    return name


def _sqlite_path(url):
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path:
        raise StorageError(f"--storage {redact(url)!r} names no file; expected sqlite:///PATH")
    return Path(path)


@contextmanager
def _file_lock(path):
    """An exclusive ``flock`` on ``path``, created if missing; a symbolic link there is refused,
    never followed (it could point anywhere outside the sweep directory)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StorageError(f"{str(path)!r} is a symbolic link; a lock file must be a plain file "
                               "(remove the link)") from None
        raise StorageError(f"cannot create the lock file {str(path)!r}: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{str(path)!r} is not a plain file; a lock file must be one (remove it)")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _schema_lock(url, engine_kwargs):
    """Held while Optuna creates its tables: N workers or machines started at once against a new
    database would otherwise each try to create them, and all but one fail."""
    if url.startswith("sqlite"):
        with _file_lock(f"{_sqlite_path(url)}.lock"):
            yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(hashtext('adamkit-optuna-schema'))"))
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext('adamkit-optuna-schema'))"))
    finally:
        engine.dispose()


def open_storage(url, heartbeat=DEFAULT_HEARTBEAT):
    """An Optuna ``RDBStorage`` with heartbeats every ``heartbeat`` seconds (int)."""
    import optuna

    kind, shown = scheme(url), redact(url)
    try:
        if kind == "sqlite":
            path = _sqlite_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs = {"connect_args": {"timeout": 60}}
        else:
            engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
            if url.startswith("postgresql://"):  # the driver the lab extra installs, whatever SQLAlchemy's default
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
        with _schema_lock(url, engine_kwargs), warnings.catch_warnings():
            if kind == "sqlite":  # WAL lets readers (progress, reports) run beside a writer; it persists
                with sqlite3.connect(path, timeout=60) as db:
                    db.execute("PRAGMA journal_mode=WAL")
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=int(heartbeat),
                                              grace_period=3 * int(heartbeat))
    except StorageError:
        raise
    except Exception as e:  # sqlalchemy's OperationalError, a missing driver, a bad URL, an unwritable file
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {shown!r}: {scrub(reason, url)}") from None


@contextmanager
def exclusive(storage, name):
    """Hold a lock that every worker of this storage agrees on (released if the process dies)."""
    if storage.url.startswith("sqlite"):
        with _file_lock(f"{_sqlite_path(storage.url)}.lock"):
            yield
    else:
        from sqlalchemy import text

        with storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": name})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": name})


def open_study(storage, name, direction="minimize"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with exclusive(storage, "adamkit-open-study"):  # N starters at once: one creates it, the rest load it
            return optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    except StorageError:
        raise
    except Exception as e:
        raise StorageError(f"cannot open study {name!r} in {redact(storage.url)!r}: "
                           f"{scrub(str(e), storage.url)}") from None


def cell_of(trial):
    a = trial.user_attrs
    return Cell(a["optimizer"], a["lr"], a["weight_decay"], a["seed"], a.get("role", "grid"))


def _finite(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def publish(trial, outcome, curves=None):
    """What optuna-dashboard shows of a trial: its settings and diverged reason as user
    attributes, and its learning curve (the metric the sweep selects on, at each evaluation)
    as intermediate values. ``curves``: one ``[(step, value), ...]`` per seed, averaged at the
    steps every seed reached with a finite value (default: the outcome's own curve)."""
    for key, value in (outcome.get("settings") or {}).items():
        trial.set_user_attr(key, value)
    if outcome.get("diverged"):
        trial.set_user_attr("diverged", outcome.get("reason") or "diverged")
    curves = [c for c in (curves if curves is not None else [outcome.get("curve")]) if c]
    if not curves:
        return
    points = [{int(step): _finite(value) for step, value in c} for c in curves]
    for step in sorted(set.intersection(*(set(p) for p in points))):
        values = [p[step] for p in points]
        if all(v is not None for v in values):
            trial.report(sum(values) / len(values), step)


class _Heartbeat:
    """Beats for one trial every ``interval`` seconds in a thread, from before the pop to the tell.

    ``parent``: a worker process started by a sweep stops when that process dies (its
    trial then goes stale and is run again), rather than training on unwatched.
    """

    def __init__(self, storage, trial_id, interval, parent=None):
        self.storage, self.trial_id, self.interval, self.parent = storage, trial_id, interval, parent
        self.storage.record_heartbeat(trial_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while not self._stop.wait(self.interval):
            if self.parent is not None and os.getppid() != self.parent:
                os._exit(1)
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a transient database error: the next beat retries
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Queue:
    """The trials of some cells in one study: enqueue the missing, claim, run, collect."""

    def __init__(self, storage, study, cells):
        from optuna.trial import TrialState

        # each cell once: a cell listed twice would wait forever for a second result
        self.storage, self.study, self.cells, self.S = storage, study, list(dict.fromkeys(cells)), TrialState
        self.keys = {c.key for c in self.cells}

    def _trials(self, *states):
        trials = self.study.get_trials(deepcopy=False, states=states)
        return [t for t in trials if t.user_attrs.get("cell") in self.keys]

    def sync(self):
        """Fail stale trials, then enqueue each cell that has no waiting, running or complete
        trial. Returns how many were enqueued."""
        import optuna

        S = self.S
        with exclusive(self.storage, self.study.study_name), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
            live = {t.user_attrs["cell"] for t in self._trials(S.WAITING, S.RUNNING, S.COMPLETE)}
            missing = [c for c in self.cells if c.key not in live]
            for c in missing:
                self.study.enqueue_trial({}, user_attrs={"cell": c.key, **c.as_dict()})
        return len(missing)

    def status(self):
        """``(done, running, waiting)``: how many cells are in each state."""
        S = self.S
        cells = {S.COMPLETE: set(), S.RUNNING: set(), S.WAITING: set()}
        for t in self._trials(*cells):
            cells[t.state].add(t.user_attrs["cell"])
        return len(cells[S.COMPLETE]), len(cells[S.RUNNING]), len(cells[S.WAITING])

    def _claim(self, interval, parent):
        """Claim one waiting trial; returns ``(trial_id, heartbeat)`` or ``None``."""
        import optuna

        # Under the lock: on SQLite, Optuna's WAITING -> RUNNING switch alone is no compare-and-set.
        with exclusive(self.storage, self.study.study_name):
            for t in self._trials(self.S.WAITING):
                beat = _Heartbeat(self.storage, t._trial_id, interval, parent)  # beats before the claim
                try:
                    if self.storage.set_trial_state_values(t._trial_id, state=self.S.RUNNING):
                        return t._trial_id, beat
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass
        return None

    def _taken_over(self, trial_id):
        """Whether another worker has finished this worker's trial: failed it as stale while this
        one was paused (a laptop lid, a stopped VM) for longer than three heartbeats."""
        try:
            return self.storage.get_trial(trial_id).state != self.S.RUNNING
        except Exception:  # the storage unreachable: not known to be taken over
            return False

    def _run(self, trial_id, beat, objective, out, higher_is_better):
        """Run one claimed trial and record its outcome; returns whether it was recorded. Any
        interruption before the result is stored (Ctrl-C, an error) marks the trial failed at
        once, so the next worker reruns its cell without waiting for the heartbeat to go stale.
        A trial that another worker failed as stale meanwhile is dropped: its cell runs again."""
        import optuna

        trial = optuna.Trial(self.study, trial_id)
        with beat:
            try:
                cell = cell_of(trial)
                run_dir = Path(out) / "runs" / cell.slug
                started = time.perf_counter()
                outcome = objective(cell, run_dir)
                attrs = {"metric": outcome["metric"], "higher_is_better": bool(outcome["higher_is_better"]),
                         "selection": outcome.get("selection", "val"),
                         "val": {k: _finite(v) for k, v in outcome["val"].items()},
                         "test": {k: _finite(v) for k, v in outcome["test"].items()},
                         "diverged": bool(outcome["diverged"]), "reason": outcome.get("reason"),
                         "seconds": time.perf_counter() - started,
                         "run_dir": str(run_dir), "host": socket.gethostname()}
                trial.set_user_attr("outcome", attrs)  # one write: each is a transaction
                publish(trial, outcome)
                value = _finite(outcome["val"].get(outcome["metric"]))
                if value is None:  # diverged: the worst value, so that a search never prefers it
                    value = -math.inf if higher_is_better else math.inf
                self.study.tell(trial, value)
                return True
            except BaseException as e:
                if not isinstance(e, KeyboardInterrupt) and self._taken_over(trial_id):
                    print(f"adamkit: trial {trial_id} was given up as stale while this worker was paused; "
                          "its result is dropped and its cell runs again", file=sys.stderr)
                    return False
                self._fail(trial_id, e)
                raise

    def _fail(self, trial_id, error):
        import optuna

        try:
            self.storage.set_trial_user_attr(trial_id, "error", f"{type(error).__name__}: {error}"[:500])
            self.storage.set_trial_state_values(trial_id, state=self.S.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # interrupted after its result was stored
            pass

    def work(self, objective, out, *, higher_is_better=False, interval=DEFAULT_HEARTBEAT, parent=None,
             on_trial=None):
        """Run trials until every cell has a result in the storage; returns how many this worker ran.

        ``objective(cell, run_dir) -> dict`` with keys ``metric`` (the primary metric's
        name), ``higher_is_better``, ``val`` and ``test`` ({metric: value}) and
        ``diverged``. Many workers (processes, machines) may work one queue at once.
        """
        ran = 0
        self.sync()
        while True:
            claimed = self._claim(interval, parent)
            if claimed is not None:
                ran += self._run(*claimed, objective, out, higher_is_better)
                if on_trial:
                    on_trial()
                continue
            done, running, waiting = self.status()
            if done == len(self.cells):
                return ran
            if running:  # another worker's trial: wait for its result, or for its heartbeat to go stale
                time.sleep(max(0.5, interval / 2))
            self.sync()  # a failed or stale trial's cell goes back into the queue

    def completed(self):
        """The complete trials, one per cell (the earliest, should a cell ever have two), and
        how many duplicates were left out."""
        seen, rows, duplicates = set(), [], 0
        for t in sorted(self._trials(self.S.COMPLETE), key=lambda t: t.number):
            key = t.user_attrs["cell"]
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            rows.append(t)
        return rows, duplicates
