"""How an fp32 result is written back to a bf16 or fp16 parameter.

An Adam update smaller than half a bf16 ulp of the weight (2**-9 of its magnitude) is lost
by round-to-nearest: late in training, or at small learning rates, weights stop moving.

- ``"nearest"``: round to nearest even (what every framework does).
- ``"kahan"``: a compensation buffer in the param's dtype (state key ``kahan_comp``) keeps
  what rounding dropped, ``comp = round(new - round(new))``; the next step starts from
  ``p + comp``, so tiny updates accumulate as they would in fp32.
- ``"stochastic"``: round up or down with the probabilities that make the result unbiased
  (``E[round(x)] = x``).

The random stream of stochastic rounding is counter-based and the same in every kernel
(this module, the C kernel and the Triton kernel compute it alike): element ``i`` of a
tensor at a step draws ``bits(tensor_key(seed, key, step), i)``, 32 bits from a hash of
those counters alone. A run is reproducible, a resumed run continues it exactly with no
generator state to save, and kernels given the same fp32 values round them identically.

- bf16: ``(fp32 bits of x + the draw's top 16 bits) >> 16``: the magnitude's truncation
  plus a carry with probability equal to the dropped fraction.
- fp16: round away from the nearest value ``r`` to its neighbour on the far side of ``x``
  when ``u < |x - r| / gap``, ``u`` being the draw's top 24 bits over ``2**24``.
"""

import torch

ROUNDINGS = ("nearest", "kahan", "stochastic")
HALF = (torch.bfloat16, torch.float16)

M32 = 0xFFFFFFFF
# Multipliers mod 2**32. In int64 torch arithmetic the ones above 2**31 are used as their
# negative equivalents (c - 2**32) so that a 32-bit value times them never overflows.
MIX1, MIX2, WEYL = 0x7FEB352D, 0x846CA68B, 0x9E3779B9


def applies(mode, dtype):
    """Whether ``mode`` changes anything for params of ``dtype`` (wider dtypes round exactly enough)."""
    return mode != "nearest" and dtype in HALF


def mix32(x):
    """A bijective 32-bit hash (Wellons's lowbias32), on a Python int or an int64 tensor of uint32 values."""
    tensor = torch.is_tensor(x)
    x = x ^ (x >> 16)
    x = (x * MIX1) & M32
    x = x ^ (x >> 15)
    x = (x * (MIX2 - 2**32 if tensor else MIX2)) & M32
    return x ^ (x >> 16)


def tensor_key(seed, key, step):
    """The 32-bit key of one tensor (its index ``key`` among the optimizer's params) at one step."""
    k = mix32(seed & M32)
    for word in ((seed >> 32) & M32, key & M32, int(step) & M32):
        k = mix32(k ^ word)
    return k


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
