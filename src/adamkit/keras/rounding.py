"""The rounding modes and random stream of :mod:`adamkit.rounding` on Keras variables, in
``keras.ops``: every Keras backend and every adamkit.torch kernel round equal fp32 values alike.

The stream is 32-bit unsigned arithmetic. ``keras.ops`` does it in int32 on every backend:
products and sums wrap modulo 2**32 there as in uint32 (two's complement), and a logical
right shift is an arithmetic one with the sign-extended bits masked off. ``ops.view``
reinterprets fp32 as int32 bits (TensorFlow, JAX and torch all offer it).
"""

import numpy as np
from keras import ops

from adamkit.rounding import M32, MIX1, MIX2, ROUNDINGS, WEYL, key_prefix  # noqa: F401 (re-exported)

HALF = ("bfloat16", "float16")


def applies(mode, dtype):
    """Whether ``mode`` changes anything for variables of ``dtype`` (wider dtypes round exactly enough)."""
    return mode != "nearest" and dtype in HALF


def math_dtype(dtype):
    """The dtype the update is computed in: float32 for half-precision variables."""
    return "float32" if dtype in HALF else dtype


def _i32(c):
    """A uint32 constant as the int32 with the same bits."""
    return np.int32(c - 2**32 if c >= 2**31 else c)


def _srl(x, s):
    """Logical right shift of int32 bits."""
    return ops.bitwise_and(ops.right_shift(x, s), _i32((1 << (32 - s)) - 1))


def mix32(x):
    """A bijective 32-bit hash (Wellons's lowbias32) on int32 tensors holding uint32 bits."""
    x = ops.bitwise_xor(x, _srl(x, 16))
    x = ops.multiply(x, _i32(MIX1))
    x = ops.bitwise_xor(x, _srl(x, 15))
    x = ops.multiply(x, _i32(MIX2))
    return ops.bitwise_xor(x, _srl(x, 16))


def tensor_key(seed, key, step):
    """The 32-bit key (an int32 scalar tensor) of variable ``key`` at ``step``, a possibly traced integer."""
    k = key_prefix(seed, key)
    step = ops.cast(step, "int32")  # int64 on some backends: its low 32 bits, as uint32 sees them
    return mix32(ops.bitwise_xor(step, _i32(k)))


def bits(k, shape):
    """The draws (int32 tensor of uint32 bits) of a variable of ``shape`` under key ``k``, in row-major order."""
    i = ops.arange(int(np.prod(shape)), dtype="int32")
    return ops.reshape(mix32(ops.add(ops.multiply(i, _i32(WEYL)), k)), shape)


def stochastic(x, dtype, k):
    """``x`` (fp32) rounded to ``dtype`` up or down, unbiased, with the draws of key ``k``."""
    draws = bits(k, x.shape)
    if dtype == "bfloat16":
        raw = ops.view(x, "int32")
        top = ops.bitwise_and(ops.add(raw, _srl(draws, 16)), _i32(0xFFFF0000))
        out = ops.cast(ops.view(top, "float32"), dtype)  # low 16 bits zero: the cast is exact
        return ops.where(ops.isnan(x), ops.cast(x, dtype), out)  # a NaN stays a NaN
    r = ops.cast(x, dtype)
    rf = ops.cast(r, "float32")
    step = ops.where(ops.abs(x) > ops.abs(rf), np.int16(1), np.int16(-1))
    neighbour = ops.view(ops.add(ops.view(r, "int16"), step), dtype)  # one ulp further in magnitude, or back
    gap = ops.cast(neighbour, "float32") - rf
    prob = ops.where(ops.not_equal(x, rf), (x - rf) / gap, 0.0)  # exact values stay; NaN and inf too
    u = ops.cast(_srl(draws, 8), "float32") * 2.0**-24
    return ops.where(u < prob, neighbour, r)


def read(p, comp):
    """The fp32 value a step starts from: ``p``, plus the Kahan compensation where there is one."""
    value = ops.cast(p, "float32")
    return value if comp is None else value + ops.cast(comp, "float32")
