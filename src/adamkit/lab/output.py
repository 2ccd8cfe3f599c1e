"""Writing a run's outputs: all or nothing (a temporary directory, then one rename)."""

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(target):
    """Yield a fresh temporary directory beside ``target``; rename it to ``target`` on success.

    An existing ``target`` is never touched: the user's earlier results stay.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"output directory {str(target)!r} already exists; choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def write_metrics_csv(path, results, columns):
    """One row per (study, optimizer, step)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["study", "step", "optimizer", *columns])
        for study_name, study in results["studies"].items():
            for opt, run in study["runs"].items():
                h = run["history"]
                for t in range(len(h[columns[0]])):
                    writer.writerow([study_name, t + 1, opt, *(repr(h[c][t]) for c in columns)])
