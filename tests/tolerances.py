"""Tolerances per dtype, in one place: ``assert_close(actual, expected)`` picks by dtype."""

import numpy as np
import torch

# fp64: elementwise. fp32: norm-wise relative error, since a near-zero element makes
# elementwise relative error meaningless. bf16/fp16: elementwise against the tensor's
# own scale: torch.optim rounds every intermediate to the param dtype while adamkit
# computes in fp32 and rounds once, so a cancellation can differ by a few ulps of the
# operands (bf16 ulp = 2**-8 relative), not of the result.
TOL = {
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.float32: dict(rel=1e-6),
    torch.bfloat16: dict(scaled=2e-2),
    torch.float16: dict(scaled=3e-3),
}


def _tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def assert_close(actual, expected, dtype=None, scale=1.0, msg=""):
    a, e = _tensor(actual), _tensor(expected)
    tol = TOL[dtype or a.dtype]
    a, e = a.double(), e.double()
    assert a.shape == e.shape, f"{msg}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    if "rel" in tol:
        norm = max(e.norm().item(), 1e-30)
        err = (a - e).norm().item() / norm
        assert err <= tol["rel"] * scale, f"{msg}: relative error {err:.3g} > {tol['rel'] * scale:.3g}"
    elif "scaled" in tol:
        size = max(1.0, e.abs().max().item()) if e.numel() else 1.0
        t = tol["scaled"] * scale
        torch.testing.assert_close(a, e, rtol=t, atol=t * size, msg=msg or None)
    else:
        torch.testing.assert_close(a, e, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale, msg=msg or None)
