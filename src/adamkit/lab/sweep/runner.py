"""Running a sweep: its directory, its storage, and worker processes that share the grid.

The trial function is injected (``objective(cell, run_dir) -> outcome``), so the
storage's promises can be checked with a cheap function and the lab trains for real.
"""

import json
import multiprocessing
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from adamkit.lab.sweep import storage as st
from adamkit.lab.sweep.grid import SweepSpec

EMBEDDED = "sweep.db (SQLite) in the sweep directory"


class SweepMismatch(Exception):
    """The sweep directory or study holds a different sweep."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename,
    so a reader (or a kill) never meets a half-written file."""
    from adamkit.lab.output import clean_stale, temp_prefix

    path = Path(path)
    clean_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.stem), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, text):
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _check_saved(saved, out, spec, where):
    """Refuse (SweepMismatch) a sweep directory whose settings file holds another sweep."""
    try:
        meta = json.loads(saved.read_text())
        old = SweepSpec.from_dict(meta["spec"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SweepMismatch(f"{str(saved)!r} is not a sweep's settings file ({e}); choose another --out") from None
    diff = spec.differences(old)
    if diff:
        raise SweepMismatch(f"{str(out)!r} holds a different sweep ({'; '.join(diff)}); rerun that command or "
                            "choose another --out")
    if meta.get("storage") != where:
        raise SweepMismatch(f"{str(out)!r} keeps its trials in {meta.get('storage')}, not {where}; "
                            "pass that --storage")


def _claim_directory(saved, out, spec, where):
    """Write ``sweep.json`` unless it exists, in one step that only one of several sweeps started
    at once can win (a hard link of a complete file fails where the name is taken); the others
    read the winner's and are refused unless it is the same sweep."""
    text = json.dumps({"spec": spec.as_dict(), "storage": where, "study": spec.study_name}, indent=2) + "\n"
    from adamkit.lab.output import clean_stale, temp_prefix

    clean_stale(out)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix("sweep.json"), dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            try:
                os.link(tmp, saved)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: an exclusive create instead
                with open(saved, "x", encoding="utf-8") as f:
                    f.write(text)
        except FileExistsError:
            _check_saved(saved, out, spec, where)
    finally:
        os.unlink(tmp)


def _is_sweep_entry(name):
    return name.startswith(("sweep.db", ".sweep.json.tmp-"))


def prepare(out, spec: SweepSpec, url=None, heartbeat=st.DEFAULT_HEARTBEAT, direction="minimize"):
    """Check ``out`` holds this sweep (or nothing), open its storage and study.

    Returns ``(storage, study)``. A directory or study from a different command is
    refused (:class:`SweepMismatch`) before anything is trained, also when the two are
    started at the same moment.
    """
    out = Path(out)
    where = st.redact(url) if url else EMBEDDED  # a moved directory keeps its embedded storage
    url = url or st.default_url(out)
    st.scheme(url)
    if os.path.islink(out) and not out.exists():
        raise SweepMismatch(f"--out {str(out)!r} is a symbolic link to nothing; choose another --out")
    saved = out / "sweep.json"
    if saved.exists():
        _check_saved(saved, out, spec, where)
    elif out.exists() and any(not _is_sweep_entry(p.name) for p in out.iterdir()):
        raise SweepMismatch(f"{str(out)!r} exists and is not a sweep directory; choose another --out")
    storage = st.open_storage(url, heartbeat)
    out.mkdir(parents=True, exist_ok=True)
    _claim_directory(saved, out, spec, where)
    study = st.open_study(storage, spec.study_name, direction)
    stored = study.user_attrs.get("spec")
    if stored is not None and SweepSpec.from_dict(stored) != spec:
        raise SweepMismatch(f"study {spec.study_name!r} in {st.redact(url)!r} holds a different sweep")
    if stored is None:
        study.set_user_attr("spec", spec.as_dict())
    return storage, study


def _worker(url, heartbeat, study_name, cells, objective, out, higher_is_better, parent, errors):
    try:
        storage = st.open_storage(url, heartbeat)
        queue = st.Queue(storage, st.open_study(storage, study_name), cells)
        queue.work(objective, out, higher_is_better=higher_is_better, interval=heartbeat, parent=parent)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException as e:
        errors.put(f"{type(e).__name__}: {e}")
        raise SystemExit(1) from e


def execute(storage, study, cells, objective, out, *, jobs=1, heartbeat=st.DEFAULT_HEARTBEAT,
            higher_is_better=False, progress=None):
    """Run ``cells`` to completion with ``jobs`` worker processes (``jobs=1``: this process).

    ``progress(done, total)`` is called as results arrive. Returns the complete trials,
    one per cell.
    """
    queue = st.Queue(storage, study, cells)
    cells = queue.cells  # each once

    def report():
        if progress:
            progress(queue.status()[0], len(cells))

    report()
    jobs = min(jobs, len(cells))  # a worker more than there are cells would only wait
    if jobs <= 1:
        queue.work(objective, out, higher_is_better=higher_is_better, interval=heartbeat, on_trial=report)
    else:
        ctx = multiprocessing.get_context("spawn")
        errors = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(storage.url, heartbeat, study.study_name, cells, objective,
                                                   str(out), higher_is_better, os.getpid(), errors), daemon=True)
                 for _ in range(jobs)]
        for p in procs:
            p.start()
        try:
            while any(p.is_alive() for p in procs):
                time.sleep(0.5)
                report()
        finally:
            for p in procs:
                p.terminate()
                p.join()
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            try:
                reason = errors.get(timeout=5)
            except Exception:
                reason = f"exit code {failed[0]}"
            raise RuntimeError(f"a sweep worker failed: {reason}")
        report()
    rows, duplicates = queue.completed()
    if len(rows) != len(cells) or duplicates:  # the promise this module keeps; never seen broken
        raise RuntimeError(f"the storage holds {len(rows)} results for {len(cells)} cells "
                           f"({duplicates} duplicates); rerun to continue")
    return rows
