"""How an fp32 result is written back to a bf16 or fp16 parameter.

An Adam update smaller than half a bf16 ulp of the weight (2**-9 of its magnitude) is lost
by round-to-nearest: late in training, or at small learning rates, weights stop moving.

- ``"nearest"``: round to nearest even (what every framework does).
- ``"kahan"``: a compensation buffer in the param's dtype (state key ``kahan_comp``) keeps
  what rounding dropped; the next step starts from ``p + kahan_comp``, so tiny updates
  accumulate as they would in fp32.
- ``"stochastic"``: round up or down with the probabilities that make the result unbiased
  (``E[round(x)] = x``), from a counter-based stream: the random numbers of a tensor at a
  step depend only on ``(seed, tensor key, step)``, so a run is reproducible and a resumed
  run continues it exactly, with no generator state to save.
"""

import torch

ROUNDINGS = ("nearest", "kahan", "stochastic")
HALF = (torch.bfloat16, torch.float16)


def applies(mode, dtype):
    """Whether ``mode`` changes anything for params of ``dtype`` (wider dtypes round exactly enough)."""
    return mode != "nearest" and dtype in HALF


def generator(seed, key, step, device):
    """The torch generator for one tensor at one step (a 63-bit mix of the three counters)."""
    mixed = (seed * 0x9E3779B97F4A7C15 + key * 0xBF58476D1CE4E5B9 + int(step) * 0x94D049BB133111EB) % (2**63)
    return torch.Generator(device=device).manual_seed(mixed)


def stochastic(x, dtype, gen):
    """``x`` (fp32) rounded to ``dtype`` up or down, unbiased. The two candidates are the nearest
    value ``r`` and its neighbour on the far side of ``x`` (one step of the integer bit pattern,
    which is one ulp in magnitude for sign-magnitude floats)."""
    r = x.to(dtype)
    rf = r.float()
    away = x.abs() > rf.abs()
    step = torch.where(away, 1, -1).to(torch.int16)
    neighbour = (r.view(torch.int16) + step).view(dtype)
    gap = neighbour.float() - rf
    prob = torch.where(x != rf, (x - rf) / gap, 0.0)  # exact values stay; NaN and inf stay too
    u = torch.rand(x.shape, generator=gen, device=x.device)
    return torch.where(u < prob, neighbour, r)


def read(p, comp):
    """The value a step starts from: ``p``, plus the Kahan compensation where there is one."""
    return p.float() + comp.float() if comp is not None else p.float()


def write(p, new, mode, comp=None, gen=None):
    """Store fp32 ``new`` into ``p`` by ``mode`` (``comp`` for Kahan, ``gen`` for stochastic)."""
    if mode == "kahan" and comp is not None:
        p.copy_(new)
        comp.copy_(new - p.float())
    elif mode == "stochastic" and gen is not None:
        p.copy_(stochastic(new, p.dtype, gen))
    else:
        p.copy_(new)
