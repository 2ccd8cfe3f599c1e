"""Weight initializers with torch.nn.init's fan rules, for torch tensors and NumPy arrays.

Each initializer takes a target and fills it:

- a torch tensor: filled in place;
- a NumPy array: filled in place;
- a shape tuple: a new float32 NumPy array is returned.

Fans follow ``layout``: ``"torch"`` (default) reads a weight as ``(out, in, *kernel)``,
``"keras"`` as ``(*kernel, in, out)``.

``seed=`` (an int) or ``generator=`` (a ``torch.Generator`` or ``numpy.random.Generator``)
makes the values reproducible. The target is returned.

Xavier/Glorot: ``std = gain * sqrt(2 / (fan_in + fan_out))``. He/Kaiming:
``std = gain / sqrt(fan)``, ``gain = calculate_gain(nonlinearity, a)``. ``truncated=True``
draws from a normal cut at ±2σ and rescaled so the std is still the formula's (Keras's and
JAX's default for glorot/he normal).

>>> w = he_normal((64, 32), seed=0)
>>> w.shape, w.dtype
((64, 32), dtype('float32'))
"""

import math

import numpy as np

LAYOUTS = ("torch", "keras")
MODES = ("fan_in", "fan_out")
# Std of a standard normal truncated to [-2, 2]: dividing by it restores unit std.
TRUNCATED_STD = 0.87962566103423978


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity, with torch.nn.init.calculate_gain's values."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"Invalid negative slope: param={param!r}; expected a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Invalid nonlinearity={nonlinearity!r}; expected one of "
                     f"{', '.join(map(repr, linear + ('tanh', 'relu', 'leaky_relu', 'selu')))}")


def _is_torch(x):
    return type(x).__module__.partition(".")[0] == "torch"


def _shape(x):
    return tuple(x) if isinstance(x, (tuple, list)) else tuple(x.shape)


def fans(shape, layout="torch"):
    """``(fan_in, fan_out)`` of a weight: torch ``(out, in, *kernel)``, keras ``(*kernel, in, out)``."""
    if layout not in LAYOUTS:
        raise ValueError(f"Invalid layout={layout!r}; expected one of 'torch', 'keras'")
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"Fan in and fan out need a tensor with at least 2 dimensions, got shape={shape}")
    if layout == "torch":
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _fill(x, dist, a, b, *, seed, generator):
    """Fill ``x`` from ``dist`` in {"constant", "normal", "truncated", "uniform"} with
    parameters (a, b) = (value, -), (mean, std) or (low, high)."""
    if _is_torch(x):
        import torch

        gen = generator if generator is not None else (
            torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None)
        with torch.no_grad():
            if dist == "constant":
                return x.fill_(a)
            if dist == "uniform":
                return x.uniform_(a, b, generator=gen)
            if dist == "normal":
                return x.normal_(a, b, generator=gen)
            return torch.nn.init.trunc_normal_(x, a, b, a - 2 * b, a + 2 * b, generator=gen)
    out = np.zeros(x, dtype=np.float32) if isinstance(x, (tuple, list)) else x
    rng = generator if generator is not None else np.random.default_rng(seed)
    if dist == "constant":
        values = np.full(out.shape, a)
    elif dist == "uniform":
        values = rng.uniform(a, b, out.shape)
    else:
        values = rng.standard_normal(out.shape)
        if dist == "truncated":  # resample until every draw lies within ±2σ
            bad = np.abs(values) > 2
            while bad.any():
                values[bad] = rng.standard_normal(int(bad.sum()))
                bad = np.abs(values) > 2
        values = a + b * values
    out[...] = values
    return out


def _check_target(x, layout):
    if not (_is_torch(x) or isinstance(x, (np.ndarray, tuple, list))):
        raise TypeError(f"Invalid target of type {type(x).__name__}; expected a torch tensor, "
                        "a NumPy array or a shape tuple")
    if layout not in LAYOUTS:
        raise ValueError(f"Invalid layout={layout!r}; expected one of 'torch', 'keras'")


def zeros(x, *, layout="torch", seed=None, generator=None):
    """Fill with 0."""
    _check_target(x, layout)
    return _fill(x, "constant", 0.0, None, seed=seed, generator=generator)


def normal(x, mean=0.0, std=1.0, *, truncated=False, layout="torch", seed=None, generator=None):
    """Fill from N(mean, std²), or the ±2σ truncated normal with the same std."""
    _check_target(x, layout)
    if not (std >= 0 and math.isfinite(std)):
        raise ValueError(f"Invalid std={std!r}; expected a finite number >= 0")
    if truncated:
        return _fill(x, "truncated", mean, std / TRUNCATED_STD, seed=seed, generator=generator)
    return _fill(x, "normal", mean, std, seed=seed, generator=generator)


def uniform(x, a=0.0, b=1.0, *, layout="torch", seed=None, generator=None):
    """Fill from U(a, b)."""
    _check_target(x, layout)
    if not a <= b:
        raise ValueError(f"Invalid bounds a={a!r}, b={b!r}; expected a <= b")
    return _fill(x, "uniform", a, b, seed=seed, generator=generator)


def xavier_uniform(x, gain=1.0, *, layout="torch", seed=None, generator=None):
    """Glorot & Bengio (2010): U(-r, r), ``r = gain * sqrt(6 / (fan_in + fan_out))``."""
    _check_target(x, layout)
    fan_in, fan_out = _nonzero_fans(x, layout)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(x, "uniform", -bound, bound, seed=seed, generator=generator)


def xavier_normal(x, gain=1.0, *, truncated=False, layout="torch", seed=None, generator=None):
    """Glorot & Bengio (2010): N(0, std²), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    _check_target(x, layout)
    fan_in, fan_out = _nonzero_fans(x, layout)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal(x, 0.0, std, truncated=truncated, seed=seed, generator=generator)


def _he_std(x, a, mode, nonlinearity, layout):
    if mode not in MODES:
        raise ValueError(f"Invalid mode={mode!r}; expected one of 'fan_in', 'fan_out'")
    fan_in, fan_out = _nonzero_fans(x, layout)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def he_uniform(x, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, layout="torch", seed=None,
               generator=None):
    """He et al. (2015), as torch's kaiming_uniform_: U(-r, r), ``r = sqrt(3) * gain / sqrt(fan)``."""
    _check_target(x, layout)
    bound = math.sqrt(3.0) * _he_std(x, a, mode, nonlinearity, layout)
    return _fill(x, "uniform", -bound, bound, seed=seed, generator=generator)


def he_normal(x, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, truncated=False, layout="torch",
              seed=None, generator=None):
    """He et al. (2015), as torch's kaiming_normal_: N(0, std²), ``std = gain / sqrt(fan)``."""
    _check_target(x, layout)
    std = _he_std(x, a, mode, nonlinearity, layout)
    return normal(x, 0.0, std, truncated=truncated, seed=seed, generator=generator)


def _nonzero_fans(x, layout):
    fan_in, fan_out = fans(_shape(x), layout)
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"Cannot initialize a weight with a zero fan: shape={_shape(x)} gives "
                         f"fan_in={fan_in}, fan_out={fan_out}")
    return fan_in, fan_out


INITIALIZERS = {f.__name__: f for f in (zeros, normal, uniform, xavier_uniform, xavier_normal,
                                         he_uniform, he_normal)}
