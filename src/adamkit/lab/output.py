"""Writing results: all or nothing (a temporary directory, then one rename).

Directories end with the permissions the umask gives (``mkdtemp`` makes them 0700), and
text is written as UTF-8 whatever the locale.
"""

import csv
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
_STALE = re.compile(rf"^\..+\.tmp-{re.escape(_HOST)}-(\d+)-[^/]*$")


def temp_prefix(name):
    """The prefix of a hidden temporary beside ``name``: it names this host and process, so
    that one a killed process left behind can be told from one being written now."""
    return f".{name}.tmp-{_HOST}-{os.getpid()}-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def clean_stale(directory):
    """Remove the temporaries in ``directory`` that a process of this host left when it was
    killed (SIGKILL, a power cut): nothing else removes them, and they are never results."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        m = _STALE.match(entry.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class atomic_directory:
    """``with atomic_directory(target) as tmp:`` writes into ``tmp``, a hidden directory beside
    ``target``, renamed to ``target`` on success and removed on any failure or interrupt.

    An existing ``target`` is never touched. With ``unique=True`` (default names such as
    ``runs/demo-<time>``) a taken name gets a suffix ``-2``, ``-3``, ... instead of failing,
    so runs started in the same second all keep their results. ``path`` is the final name.
    """

    def __init__(self, target, unique=False):
        self.target, self.unique, self.path = Path(target), unique, None

    def __enter__(self):
        if os.path.lexists(self.target) and not self.unique:
            raise FileExistsError(f"output directory {str(self.target)!r} already exists; choose another --out")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(self.target.parent)
        self.tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(self.target.name), dir=self.target.parent))
        os.chmod(self.tmp, 0o777 & ~_umask())
        return self.tmp

    def _candidates(self):
        yield self.target
        if self.unique:
            for k in range(2, 10_000):
                yield self.target.with_name(f"{self.target.name}-{k}")

    def __exit__(self, kind, error, trace):
        if kind is None:
            for candidate in self._candidates():
                if os.path.lexists(candidate):  # a dangling symbolic link is taken too
                    continue
                try:
                    os.rename(self.tmp, candidate)
                except OSError:  # taken in the meantime by a run started alongside
                    continue
                self.path = candidate
                return False
            error = FileExistsError(f"output directory {str(self.target)!r} already exists; choose another --out")
        shutil.rmtree(self.tmp, ignore_errors=True)
        if kind is None:
            raise error
        return False


def write_text(path, text):
    Path(path).write_text(text, encoding="utf-8")


def write_json(path, data):
    """Strict JSON (``allow_nan=False``): pass values through :func:`adamkit.lab.run.clean`."""
    write_text(path, json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


class CsvRows:
    """A CSV file written row by row, flushed at least every second, so it can be followed
    while a run goes."""

    def __init__(self, path, fields):
        self.file = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fields)
        self.writer.writeheader()
        self.flushed = time.monotonic()

    def write(self, rows):
        self.writer.writerows(rows)
        if time.monotonic() - self.flushed > 1.0:
            self.file.flush()
            self.flushed = time.monotonic()

    def close(self):
        self.file.close()
