"""The rounding modes of :mod:`adamkit.rounding` on torch tensors: reading a param (plus its
Kahan compensation) and writing an fp32 result back to a bf16 or fp16 param, with the
stochastic stream's per-element draws in int64 torch arithmetic."""

import torch

from adamkit.rounding import M32, MIX1, MIX2, ROUNDINGS, WEYL, tensor_key  # noqa: F401 (re-exported)

HALF = (torch.bfloat16, torch.float16)


def applies(mode, dtype):
    """Whether ``mode`` changes anything for params of ``dtype`` (wider dtypes round exactly enough)."""
    return mode != "nearest" and dtype in HALF


def mix32(x):
    """:func:`adamkit.rounding.mix32` on an int64 tensor of uint32 values. Multipliers above 2**31
    are used as their negative equivalents mod 2**32, so that no product overflows int64."""
    x = x ^ (x >> 16)
    x = (x * MIX1) & M32
    x = x ^ (x >> 15)
    x = (x * (MIX2 - 2**32)) & M32
    return x ^ (x >> 16)


def bits(k, n, device):
    """The 32-bit draws of elements ``0 .. n-1`` under tensor key ``k`` (int64 tensor of uint32 values);
    element ``i`` draws ``mix32((i * WEYL + k) mod 2**32)``."""
    i = torch.arange(n, dtype=torch.int64, device=device) & M32
    return mix32((i * (WEYL - 2**32) + k) & M32)


def stochastic(x, dtype, k):
    """``x`` (fp32) rounded to ``dtype`` up or down, unbiased, with the draws of tensor key ``k``."""
    x = x.contiguous()
    draws = bits(k, x.numel(), x.device).view(x.shape)
    if dtype == torch.bfloat16:
        raw = x.view(torch.int32).to(torch.int64) & M32
        top = ((raw + (draws >> 16)) >> 16) & 0xFFFF
        out = ((top ^ 0x8000) - 0x8000).to(torch.int16).view(torch.bfloat16)  # uint16 -> int16 bits
        return torch.where(x.isnan(), x.to(dtype), out)  # a NaN stays a NaN
    r = x.to(dtype)
    rf = r.float()
    away = x.abs() > rf.abs()
    step = torch.where(away, 1, -1).to(torch.int16)
    neighbour = (r.view(torch.int16) + step).view(dtype)  # one ulp in magnitude (sign-magnitude floats)
    gap = neighbour.float() - rf
    prob = torch.where(x != rf, (x - rf) / gap, 0.0)  # exact values stay; NaN and inf stay too
    u = (draws >> 8).float() * 2.0**-24
    return torch.where(u < prob, neighbour, r)


def read(p, comp):
    """The value a step starts from: ``p``, plus the Kahan compensation where there is one."""
    return p.float() + comp.float() if comp is not None else p.float()


def write(p, new, mode, comp=None, key=None):
    """Store fp32 ``new`` into ``p`` by ``mode`` (``comp`` for Kahan, the tensor key for stochastic)."""
    if mode == "kahan" and comp is not None:
        p.copy_(new)
        comp.copy_(new - p.float())
    elif mode == "stochastic" and key is not None:
        p.copy_(stochastic(new, p.dtype, key).view(p.shape))
    else:
        p.copy_(new)
