"""A single-pass C kernel for float32 and bfloat16 Adam on the CPU (every decay mode, AMSGrad,
maximize), built with the system's C compiler on first use and cached
(``$XDG_CACHE_HOME/adamkit``). The cached library is keyed by everything the build depends
on: the source, the flags, the compiler's identity and the CPU's features (``-march=native``
code from one CPU may not run on another that shares the home directory). ``load()`` returns
None, with a warning that quotes the compiler, where it cannot be built, and the plan uses
torch's fused kernel instead."""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("cpu_adam.c")
# -fno-strict-aliasing: bf16 tiles are widened through uint32 views of float buffers.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fno-strict-aliasing", "-fopenmp",
         "-shared", "-fPIC"]


def _cpu_features():
    """The CPU's model and feature flags as the kernel's ``-march=native`` build sees them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    keep = [line for line in lines if line.split(":")[0].strip() in ("flags", "Features", "model name")]
    return platform.machine() + "\n" + "\n".join(dict.fromkeys(keep))


def _compiler_identity(compiler):
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return compiler


def _warn(message):
    warnings.warn(f"adamkit: the C kernel for CPU Adam could not be built ({message}); "
                  "torch's fused CPU kernel is used instead", RuntimeWarning, stacklevel=4)


def _library():
    """The compiled library, built or found in the cache, or None if it cannot be built here."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        _warn("no C compiler found: set CC or install gcc")
        return None
    key = b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(), _compiler_identity(compiler).encode(),
                      _cpu_features().encode()])
    digest = hashlib.sha256(key).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "adamkit"
    library = cache / f"cpu_adam-{digest}.so"
    if not library.exists():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
            os.close(fd)
        except OSError as e:
            _warn(f"cache directory {cache}: {e.strerror or e}")
            return None
        try:
            subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], check=True, capture_output=True,
                           text=True)
            os.replace(tmp, library)  # atomic: concurrent builders never see half a library
        except subprocess.CalledProcessError as e:
            Path(tmp).unlink(missing_ok=True)
            _warn(f"{compiler}: {(e.stderr or '').strip().splitlines()[-1:] or e}")
            return None
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            _warn(f"{compiler}: {e.strerror or e}")
            return None
    try:
        lib = ctypes.CDLL(str(library))
    except OSError as e:  # e.g. a library built for another CPU under the same key
        _warn(f"{library}: {e}")
        return None
    lib.native_bf16.argtypes, lib.native_bf16.restype = [ctypes.c_int], ctypes.c_int
    return lib


@functools.cache
def load():
    """``{dtype: compiled function}`` for float32 and bfloat16 (and ``"native_bf16"``, the switch
    of :func:`native_bf16`), or None if it cannot be built here."""
    lib = _library()
    if lib is None:
        return None
    lib.native_bf16(1)
    kernels = {torch.float32: lib.adam_f32, torch.bfloat16: lib.adam_bf16, "native_bf16": lib.native_bf16}
    for fn in (lib.adam_f32, lib.adam_bf16):
        fn.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 8 + [ctypes.c_float] * 8 + [ctypes.c_int] * 2
        fn.restype = None
    return kernels


def native_bf16(want=True):
    """Update bf16 tensors with the CPU's AVX512-BF16 instructions where it has them (the
    default; same numbers but for fp32 subnormals, which they flush to zero), or with the
    portable loop; returns whether the instructions are in use."""
    return bool(load()["native_bf16"](int(want)))


def _array(ctype, values):
    return (ctype * len(values))(*values)


@torch._disable_dynamo  # a ctypes call: torch.compile runs it outside the graph
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h):
    """Update dense float32 and bfloat16 CPU tensors (params, grads and states alike), one call per dtype."""
    kernels = load()
    for dtype in (torch.float32, torch.bfloat16):
        fn = kernels[dtype]
        mine = [i for i, p in enumerate(params) if p.dtype == dtype]
        if mine:
            lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
            _adam(fn, *[[ts[i] for i in mine] if ts else ts for ts in lists], h)


def _adam(fn, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    t = [s.item() for s in steps]
    pointers = [_array(ctypes.c_void_p, [x.data_ptr() for x in ts]) if ts else None
                for ts in (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else None)]
    fn(len(params), *pointers, _array(ctypes.c_int64, [p.numel() for p in params]),
       _array(ctypes.c_float, [lr / (1 - beta1**k) for k in t]),
       _array(ctypes.c_float, [(1 - beta2**k) ** -0.5 for k in t]),
       beta1, 1 - beta1, beta2, 1 - beta2, eps, l2, l1, shrink, int(amsgrad), int(maximize))
