"""Implementations of the optimizer step, chosen by name through ``impl=``.

Every kernel module offers ``adam(...)`` and ``sgd(...)`` over flat lists of
tensors and knows nothing of param groups. The weight-decay mode arrives already
reduced to three scalars ``(l2, l1, shrink)`` (see :func:`adamkit.rules.decay_terms`).

- ``reference``: one tensor at a time through :mod:`adamkit.rules`; the oracle.
- ``foreach``:   torch's multi-tensor ``_foreach_*`` ops, a few launches per group.
- ``fused``:     torch's fused CPU/CUDA Adam kernels, every decay mode mapped onto them.
- ``triton``:    one Triton launch per (device, dtype) bucket; CUDA, or the CPU under
                 ``TRITON_INTERPRET=1``.

``auto`` picks ``triton`` for CUDA tensors when Triton is installed, ``fused`` for CPU
tensors, and ``foreach`` otherwise.
"""

import importlib
import importlib.util
import os

from adamkit._checks import check_choice

IMPLS = ("auto", "reference", "foreach", "fused", "triton")


def _has_triton():
    return importlib.util.find_spec("triton") is not None


def resolve(impl, params):
    """The concrete implementation name for ``impl`` on these params."""
    check_choice(impl, "impl", IMPLS)
    devices = {p.device.type for p in params}
    if impl == "triton":
        if not _has_triton():
            raise ValueError("impl='triton' needs Triton: pip install adamkit[triton]")
        if devices != {"cuda"} and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError(f"impl='triton' needs CUDA tensors (got {sorted(devices)}); set "
                             "TRITON_INTERPRET=1 to run it on the CPU with Triton's interpreter")
    if impl != "auto":
        return impl
    if devices == {"cuda"} and _has_triton():
        return "triton"
    if devices == {"cpu"}:
        return "fused"
    return "foreach"


def _dense(t):
    """Elements fill ``numel`` consecutive slots from ``data_ptr`` (any dim order, no gaps)."""
    if t.numel() == 0:
        return True
    expected = 1
    for stride, size in sorted((st, s) for s, st in zip(t.shape, t.stride()) if s != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def split_by_layout(params, grads, *states):
    """Indices of the tensors a flat-memory kernel may update, and of the rest.

    Flat indexing is valid when the param is dense and its grad and every state (None is
    skipped) have its shape and strides (torch already makes a grad's dtype the param's). torch's own fused kernels
    need this too: a strided param with a contiguous grad gets a wrong update from them.
    """
    flat, rest = [], []
    for i, p in enumerate(params):
        others = [grads[i]] + [s[i] for s in states if s]
        ok = _dense(p) and all(
            t is None or (t.shape == p.shape and t.stride() == p.stride()) for t in others)
        (flat if ok else rest).append(i)
    return flat, rest


def get(name):
    """The kernel module for a concrete implementation name."""
    return importlib.import_module(f"adamkit.torch.kernels.{name}")
