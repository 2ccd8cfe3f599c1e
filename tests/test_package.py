"""Packaging promises: the core imports no framework; the CLI is installed."""

import subprocess
import sys


def test_core_imports_no_framework():
    frameworks = ("torch", "keras", "tensorflow", "jax", "triton", "matplotlib")
    code = ("import sys, adamkit, adamkit.rules, adamkit.numpy, adamkit.init, adamkit.schedules; "
            f"loaded = [m for m in {frameworks!r} if m in sys.modules]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_entry_point():
    run = subprocess.run([sys.executable, "-m", "adamkit", "demo", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "--weight-decay" in run.stdout
