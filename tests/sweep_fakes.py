"""A cheap stand-in for training, to test the sweep's storage: known numbers, a log of every execution."""

import math
import os
import time
from pathlib import Path


def objective(cell, run_dir):
    """Error is lowest where wd = 1e-4 / lr (a known diagonal); every start and end is logged."""
    log = Path(run_dir).parent.parent / "executions.log"
    with open(log, "a") as f:
        f.write(f"start {cell.key}\n")
    time.sleep(float(os.environ.get("FAKE_TRIAL_SECONDS", "0.02")))
    error = 0.1 * (math.log10(cell.weight_decay) + math.log10(cell.lr) + 4) ** 2 + 0.01 * cell.seed
    with open(log, "a") as f:
        f.write(f"end {cell.key}\n")
    return {"metric": "error", "higher_is_better": False, "val": {"error": error},
            "test": {"error": error + 0.05}, "diverged": False}


def executions(out):
    """{cell key: (starts, ends)} from the log."""
    counts = {}
    for line in (Path(out) / "executions.log").read_text().splitlines():
        what, key = line.split(" ", 1)
        s, e = counts.get(key, (0, 0))
        counts[key] = (s + (what == "start"), e + (what == "end"))
    return counts
