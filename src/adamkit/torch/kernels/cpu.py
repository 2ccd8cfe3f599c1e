"""A single-pass C kernel for float32 and bfloat16 Adam on the CPU, built with the system's
C compiler on first use and cached (``$XDG_CACHE_HOME/adamkit``). ``load()`` returns None
where no compiler is found, and callers keep their multi-pass path."""

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("cpu_adam.c")
# -fno-strict-aliasing: bf16 tiles are widened through uint32 views of float buffers.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fno-strict-aliasing", "-fopenmp",
         "-shared", "-fPIC"]


@functools.cache
def load():
    """``{dtype: compiled function}`` for float32 and bfloat16, or None if it cannot be built here."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    code = SOURCE.read_bytes()
    digest = hashlib.sha256(code + " ".join(FLAGS).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "adamkit"
    library = cache / f"cpu_adam-{digest}.so"
    if not library.exists():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
            os.close(fd)
        except OSError:
            return None
        try:
            subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], check=True, capture_output=True)
            os.replace(tmp, library)  # atomic: concurrent builders never see half a library
        except (OSError, subprocess.CalledProcessError):
            Path(tmp).unlink(missing_ok=True)
            return None
    lib = ctypes.CDLL(str(library))
    kernels = {torch.float32: lib.adam_f32, torch.bfloat16: lib.adam_bf16}
    for fn in kernels.values():
        fn.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 8 + [ctypes.c_float] * 8 + [ctypes.c_int] * 2
        fn.restype = None
    return kernels


def _array(ctype, values):
    return (ctype * len(values))(*values)


def adam(fn, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2, eps,
         l2, l1, shrink, amsgrad, maximize):
    """Update dense CPU tensors of ``fn``'s dtype (params, grads and states alike) with one call."""
    torch._foreach_add_(steps, 1)
    t = [s.item() for s in steps]
    pointers = [_array(ctypes.c_void_p, [x.data_ptr() for x in ts]) if ts else None
                for ts in (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else None)]
    fn(len(params), *pointers, _array(ctypes.c_int64, [p.numel() for p in params]),
       _array(ctypes.c_float, [lr / (1 - beta1**k) for k in t]),
       _array(ctypes.c_float, [(1 - beta2**k) ** -0.5 for k in t]),
       beta1, 1 - beta1, beta2, 1 - beta2, eps, l2, l1, shrink, int(amsgrad), int(maximize))
