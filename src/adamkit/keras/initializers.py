"""Keras initializers from :mod:`adamkit.init`, with Keras's ``(*kernel, in, out)`` layout.

``truncated=True`` (the default, as Keras's ``GlorotNormal``/``HeNormal``) draws from the
±2σ truncated normal rescaled to the formula's std; ``truncated=False`` from a plain normal.
"""

import keras
from keras import ops

from adamkit import init


class _Initializer(keras.initializers.Initializer):
    _fn = None

    def __init__(self, seed=None, **options):
        self.seed, self.options = seed, options

    def __call__(self, shape, dtype=None):
        values = type(self)._fn(tuple(shape), layout="keras", seed=self.seed, **self.options)
        return ops.convert_to_tensor(values, dtype=dtype or "float32")

    def get_config(self):
        return {"seed": self.seed, **self.options}


@keras.saving.register_keras_serializable(package="adamkit")
class XavierUniform(_Initializer):
    """Glorot uniform: U(-r, r), r = gain * sqrt(6 / (fan_in + fan_out))."""

    _fn = staticmethod(init.xavier_uniform)

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed, gain=gain)


@keras.saving.register_keras_serializable(package="adamkit")
class XavierNormal(_Initializer):
    """Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out))."""

    _fn = staticmethod(init.xavier_normal)

    def __init__(self, gain=1.0, truncated=True, seed=None):
        super().__init__(seed, gain=gain, truncated=truncated)


@keras.saving.register_keras_serializable(package="adamkit")
class HeUniform(_Initializer):
    """He/Kaiming uniform: U(-r, r), r = sqrt(3) * gain / sqrt(fan)."""

    _fn = staticmethod(init.he_uniform)

    def __init__(self, a=0.0, mode="fan_in", nonlinearity="relu", seed=None):
        super().__init__(seed, a=a, mode=mode, nonlinearity=nonlinearity)


@keras.saving.register_keras_serializable(package="adamkit")
class HeNormal(_Initializer):
    """He/Kaiming normal: std = gain / sqrt(fan)."""

    _fn = staticmethod(init.he_normal)

    def __init__(self, a=0.0, mode="fan_in", nonlinearity="relu", truncated=True, seed=None):
        super().__init__(seed, a=a, mode=mode, nonlinearity=nonlinearity, truncated=truncated)
