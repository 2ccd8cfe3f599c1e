"""Killed outright (SIGKILL): compare's workers stop with their parent, and a killed run's
hidden temporary directory is removed by the next command that writes beside it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from adamkit.lab import cli

SRC = Path(__file__).parent.parent / "src"


def _adamkit(*args):
    return subprocess.Popen([sys.executable, "-m", "adamkit", *args], env={**os.environ, "PYTHONPATH": str(SRC)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _training(pid):
    """The pids of ``pid``'s pool workers once they use CPU (past their start-up)."""
    def cpu(p):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except OSError:
            return 0
    kids = [p for p in _children(pid) if "from multiprocessing.spawn" in Path(f"/proc/{p}/cmdline").read_text()
            .replace("\0", " ")]
    return kids if len(kids) == 2 and all(cpu(p) > 100 for p in kids) else None


def test_compare_workers_stop_when_their_parent_is_killed(tmp_path):
    proc = _adamkit("compare", "cancer", "--optimizers", "adam,adamw", "--steps", "10000000", "--seeds", "1",
                    "--jobs", "2", "--quiet", "--out", str(tmp_path / "c"))
    try:
        _wait(lambda: _training(proc.pid))
        workers = _training(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _wait(lambda: all(_gone(p) for p in workers), timeout=15)
    assert not (tmp_path / "c").exists()


def test_a_killed_runs_temporary_directory_is_removed_by_the_next_run(tmp_path):
    proc = _adamkit("run", "cancer", "--steps", "10000000", "--quiet", "--out", str(tmp_path / "killed"))
    try:
        _wait(lambda: list(tmp_path.glob(".killed.tmp-*")))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list(tmp_path.glob(".killed.tmp-*"))
    assert cli.main(["run", "line", "--steps", "2", "--quiet", "--out", str(tmp_path / "next")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next"]


def test_a_dangling_symlink_as_out_is_refused_before_training(tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    for argv in (["run", "line", "--steps", "100000"], ["compare", "line", "--steps", "100000"],
                 ["demo", "--steps", "100000"], ["sweep", "line", "--steps", "100000"]):
        started = time.monotonic()
        assert cli.main([*argv, "--quiet", "--out", str(link)]) == 2
        err = capsys.readouterr().err
        assert "is a symbolic link to nothing" in err and err.count("\n") == 1, err
        assert time.monotonic() - started < 10  # refused before training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]
