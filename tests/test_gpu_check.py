"""benchmarks/gpu_check.py in its CPU dry run: the correctness rows pass, the step table is written,
and a kernel that is off is caught."""

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import torch

import adamkit.torch as ak

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("TRITON_INTERPRET", None)  # conftest sets it; interpreted Triton would take minutes here
    return env


def test_dry_run_passes_and_appends_the_tables(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# earlier\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--results", str(results), "--rounds", "2",
                           "--steps", "2"],
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = results.read_text()
    assert text.startswith("# earlier\n") and "\n## GPU check: " in text  # appended, not overwritten
    assert "rows pass" in text and "FAIL" not in text and "crashed" not in text
    for row in ("| torch fused |", "| adamkit foreach |", "| floor: bytes / copy bandwidth |"):
        assert text.count(row) == 2, row  # one step table per dtype, fp32 and bf16


def _load(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # for its `import step`
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    return gpu_check


def test_without_a_gpu_it_says_so_in_one_line_and_exits_3(monkeypatch, capsys):
    gpu_check = _load(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no CUDA device" in out


def test_a_kernel_that_is_off_fails_its_row(monkeypatch):
    gpu_check = _load(monkeypatch)

    def adamw(params, impl, **kw):  # the kernel under test with beta1 = 0.89 instead of 0.9
        return ak.AdamW(params, impl=impl, **(kw if impl == "reference" else dict(kw, betas=(0.89, 0.999))))

    monkeypatch.setattr(gpu_check, "ak", types.SimpleNamespace(AdamW=adamw))
    for dtype in (torch.float32, torch.bfloat16):
        err, where = gpu_check.check("foreach", dtype, "nearest", "decoupled", False, torch.device("cpu"), 2, 0)
        assert err > gpu_check.TOLERANCE[dtype], (dtype, err, where)
