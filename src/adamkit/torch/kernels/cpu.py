"""A single-pass C kernel for Adam on the CPU (every decay mode, AMSGrad, maximize): float32 or
bfloat16 params with float32 or bfloat16 moments, bf16 params written back by any of
:mod:`.rounding`'s modes. Built with the system's C compiler on first use and cached
(``$XDG_CACHE_HOME/adamkit``). The cached library is keyed by everything the build depends
on: the source, the flags, the compiler's identity and the CPU's features (``-march=native``
code from one CPU may not run on another that shares the home directory). ``load()`` returns
None, with a warning that quotes the compiler, where it cannot be built, and the plan uses
torch's fused kernel instead."""

import array
import ctypes
import functools
import hashlib
import operator
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
# -fopenmp-simd: the vectorization hints alone; threads are the kernel's own pool (pthreads).
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fno-strict-aliasing", "-fopenmp-simd",
         "-pthread", "-shared", "-fPIC"]


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


ROUNDING_CODES = {"nearest": 0, "kahan": 1, "stochastic": 2}
_PTR, _I64, _F32, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int


@functools.cache
def load():
    """The compiled library (``adam``, ``round_bf16``, ``native_bf16``), or None if it cannot be built here."""
    lib = _library()
    if lib is None:
        return None
    lib.native_bf16(1)
    lib.adam.argtypes = [_I64] + [_PTR] * 9 + [ctypes.c_double] * 3 + [_F32] * 4 + [_INT] * 6
    lib.adam.restype = ctypes.c_int
    lib.advance.argtypes, lib.advance.restype = [_I64, _PTR], None
    lib.round_bf16.argtypes = [_INT, _PTR, _I64, ctypes.c_uint32, _PTR, _PTR]
    lib.round_bf16.restype = None
    return lib


def native_bf16(want=True):
    """Update bf16 tensors with the CPU's AVX512-BF16 instructions where it has them (the
    default; same numbers but for fp32 subnormals, which round to nearest flushes to zero), or
    with the portable loops; returns whether the instructions are in use."""
    return bool(load().native_bf16(int(want)))


def round_bf16(x, mode, key=0):
    """fp32 ``x`` rounded to bf16 by ``mode`` as the kernel writes a param (on the path in use),
    ``x`` standing for elements ``0 .. n-1`` of a tensor with stochastic key ``key``; returns
    ``(rounded, comp)``, ``comp`` the Kahan compensation (None for other modes)."""
    x = x.detach().float().contiguous().flatten()
    out = torch.empty(x.shape, dtype=torch.bfloat16)
    comp = torch.empty_like(out) if mode == "kahan" else None
    load().round_bf16(ROUNDING_CODES[mode], x.data_ptr(), x.numel(), key & 0xFFFFFFFF, out.data_ptr(),
                      comp.data_ptr() if comp is not None else None)
    return out, comp


def _addresses(tensors):
    """The tensors' data addresses as a C array (kept alive by the caller until the call returns)."""
    return array.array("Q", map(torch.Tensor.data_ptr, tensors))


def _pointer(values):
    return values.buffer_info()[0] if values is not None else None


_KERNEL_DTYPES = (torch.float32, torch.bfloat16)
_dtype = operator.attrgetter("dtype")


@torch._disable_dynamo  # a ctypes call: torch.compile runs it outside the graph
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, rounding=None):
    """Update dense CPU tensors: float32 or bfloat16 params (grads alike) with float32 or bfloat16
    moments; ``rounding`` (a :class:`~adamkit.torch.kernels.Rounding`) says how bf16 params are
    written. One call per (param dtype, moment dtype, rounding) bucket."""
    mode = rounding.mode if rounding is not None else "nearest"
    kinds = list(zip(map(_dtype, params), map(_dtype, exp_avgs)))
    distinct = set(kinds)
    for p_dtype, s_dtype in distinct:  # before any tensor changes
        if p_dtype not in _KERNEL_DTYPES or s_dtype not in _KERNEL_DTYPES:
            raise TypeError(f"the C kernel takes float32 or bfloat16 params and states, not {p_dtype} with "
                            f"{s_dtype} states")
    buckets = {}
    if len(distinct) == 1 and (mode == "nearest" or kinds[0][0] == torch.float32):  # the usual case
        buckets[(*kinds[0], "nearest")] = range(len(params))
    else:
        for i, (p_dtype, s_dtype) in enumerate(kinds):
            how = mode if p_dtype == torch.bfloat16 else "nearest"  # fp32 params round exactly enough
            if how == "kahan" and rounding.comps[i] is None:
                how = "nearest"  # no compensation buffer: the reference kernel rounds it to nearest too
            buckets.setdefault((p_dtype, s_dtype, how), []).append(i)
    for (p_dtype, s_dtype, how), idx in buckets.items():
        every = len(idx) == len(params)
        lists = [(ts if every else [ts[i] for i in idx]) if ts is not None else None
                 for ts in (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if h.amsgrad else None, steps,
                            rounding.comps if how == "kahan" else None)]
        keys = [rounding.key(i) for i in idx] if how == "stochastic" else None
        _adam(*lists, keys, h, p_dtype == torch.bfloat16, s_dtype == torch.bfloat16, ROUNDING_CODES[how])


def _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, comps, keys, h, p_bf16, s_bf16, mode):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    arrays = [_addresses(ts) if ts is not None else None
              for ts in (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, comps)]
    keys = array.array("I", keys) if keys is not None else None
    sizes, step_addresses = array.array("q", map(torch.Tensor.numel, params)), _steps(steps)
    if load().adam(len(params), *map(_pointer, arrays), _pointer(keys), _pointer(sizes), _pointer(step_addresses),
                   lr, beta1, beta2, eps, l2, l1, shrink, int(amsgrad), int(maximize), int(p_bf16), int(s_bf16),
                   mode, torch.get_num_threads()):
        raise MemoryError(f"the C kernel could not allocate its table for {len(params)} tensors")


def _steps(steps):
    """The addresses of float32 ``step`` counts on the CPU (what the kernel reads and :func:`advance` adds to)."""
    if not all(s.dtype == torch.float32 and s.is_cpu for s in steps):
        raise TypeError("the C kernel reads each step as a float32 CPU tensor")
    return _addresses(steps)


@torch._disable_dynamo  # a ctypes call: torch.compile runs it outside the graph
def advance(steps):
    """Add one to ``step`` tensors in one call; the caller has checked they are float32 CPU tensors."""
    steps = _addresses(steps)
    load().advance(len(steps), _pointer(steps))
