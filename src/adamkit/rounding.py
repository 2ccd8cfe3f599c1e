"""How an fp32 result is written back to a bf16 or fp16 parameter: the modes, and the one
random stream that every backend and kernel draws stochastic rounding from.

An Adam update smaller than half a bf16 ulp of the weight (2**-9 of its magnitude) is lost
by round-to-nearest: late in training, or at small learning rates, weights stop moving.

- ``"nearest"``: round to nearest even (what every framework does).
- ``"kahan"``: a compensation buffer in the param's dtype (state ``kahan_comp``) keeps what
  rounding dropped, ``comp = round(new - round(new))``; the next step starts from
  ``p + comp``, so tiny updates accumulate as they would in fp32.
- ``"stochastic"``: round up or down with the probabilities that make the result unbiased
  (``E[round(x)] = x``).

The stream is counter-based: element ``i`` (its flat index, mod 2**32) of the tensor with
index ``key`` among the optimizer's params, at step ``step``, draws the 32 bits
``mix32((i * WEYL + tensor_key(seed, key, step)) mod 2**32)``. A run is reproducible, a
resumed run continues it exactly with no generator state to save, and every implementation
(adamkit.torch's reference, foreach, C and Triton kernels, adamkit.keras on every backend)
rounds the same fp32 values alike.

- bf16: ``(fp32 bits of x + (draw >> 16)) >> 16``: the magnitude's truncation plus a carry
  with probability equal to the dropped fraction.
- fp16: round away from the nearest value ``r`` to its neighbour on the far side of ``x``
  when ``u < |x - r| / gap``, with ``u = (draw >> 8) / 2**24``.

This module holds the backend-free part, on Python integers; the backends compute the
per-element draws in their own tensor arithmetic.
"""

ROUNDINGS = ("nearest", "kahan", "stochastic")

M32 = 0xFFFFFFFF
MIX1, MIX2, WEYL = 0x7FEB352D, 0x846CA68B, 0x9E3779B9  # Wellons's lowbias32; the golden-ratio increment


def mix32(x):
    """A bijective hash of a 32-bit unsigned integer (lowbias32)."""
    x ^= x >> 16
    x = (x * MIX1) & M32
    x ^= x >> 15
    x = (x * MIX2) & M32
    return x ^ (x >> 16)


def key_prefix(seed, key):
    """The part of :func:`tensor_key` that does not change from step to step."""
    k = mix32(seed & M32)
    for word in ((seed >> 32) & M32, key & M32):
        k = mix32(k ^ word)
    return k


def tensor_key(seed, key, step):
    """The 32-bit key of tensor ``key`` (its index among the optimizer's params) at ``step``."""
    return mix32(key_prefix(seed, key) ^ (int(step) & M32))
