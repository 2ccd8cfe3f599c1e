"""Keras 3 optimizers over :mod:`adamkit.rules`, on the TensorFlow, JAX and PyTorch backends.

They speak Keras's dialect (``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``,
``weight_decay``, ``exclude_from_weight_decay``) and add ``decay=`` with the four modes.
As in Keras, ``weight_decay`` alone means decoupled decay (``decay="decoupled"``);
``decay="l2"`` is ``torch.optim.Adam``'s coupled penalty. Keras's base class would apply
decoupled decay on its own for any ``weight_decay``: here the rule applies it, once.

``epsilon`` is added after the bias correction of ``sqrt(v)`` (PyTorch's placement), so
results match :mod:`adamkit.torch`; ``epsilon_hat=True`` gives Keras's placement and the
results of ``keras.optimizers.Adam``/``AdamW``.
"""

import keras
from keras import ops

from adamkit import _checks, rules
from adamkit.keras.schedules import LearningRateSchedule


class _Base(keras.optimizers.Optimizer):
    def __init__(self, learning_rate, weight_decay, decay, name, **kwargs):
        _checks.check_decay(decay)
        if weight_decay is not None:
            _checks.check_nonnegative(weight_decay, "weight_decay")
        if isinstance(learning_rate, (int, float)):
            _checks.check_lr(learning_rate, "learning_rate")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.decay_mode = decay

    def _apply_weight_decay(self, variables):
        """Keras's base decays before every step; adamkit's rule does it in ``update_step``."""

    def _decay(self, variable):
        wd = self.weight_decay if self.weight_decay and self._use_weight_decay(variable) else 0.0
        return wd

    def _eta(self, learning_rate, dtype):
        """Schedule multiplier ``lr_t / lr0`` for ``decay="independent"``."""
        schedule = self._learning_rate
        if isinstance(schedule, LearningRateSchedule):
            return ops.cast(schedule.multiplier(self.iterations), dtype)
        base = getattr(schedule, "initial_learning_rate", None)
        if base:
            return ops.cast(learning_rate, dtype) / base
        return 1.0

    def _terms(self, variable, lr, learning_rate):
        eta = self._eta(learning_rate, variable.dtype)
        return rules.decay_terms(self.decay_mode, self._decay(variable), lr, eta)._asdict()

    def get_config(self):
        return {**super().get_config(), "decay": self.decay_mode}


@keras.saving.register_keras_serializable(package="adamkit")
class SGD(_Base):
    """Gradient descent with momentum as ``torch.optim.SGD`` (``b = mu*b + g; p -= lr*b``),
    which equals Keras's SGD at a constant learning rate."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 decay="decoupled", name="adamkit_sgd", **kwargs):
        _checks.check_sgd(momentum, 0.0, nesterov)
        super().__init__(learning_rate, weight_decay, decay, name, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum else []

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        buf = self._momentums[self._get_variable_index(variable)] if self.momentum else None
        p, new_buf = rules.sgd(variable, ops.cast(gradient, dtype), buf, lr=lr, momentum=self.momentum,
                               nesterov=self.nesterov, xp=ops,
                               **self._terms(variable, lr, learning_rate))
        if self.momentum:
            self.assign(buf, new_buf)
        self.assign(variable, p)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="adamkit")
class Adam(_Base):
    """Adam with a weight-decay mode (``weight_decay`` alone: decoupled, as in Keras)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, decay="decoupled", epsilon_hat=False, name="adamkit_adam", **kwargs):
        _checks.check_beta(beta_1, "beta_1")
        _checks.check_beta(beta_2, "beta_2")
        _checks.check_eps(epsilon, "epsilon")
        super().__init__(learning_rate, weight_decay, decay, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad, self.epsilon_hat = amsgrad, epsilon_hat

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums, self._velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        self._velocity_hats = self.add_optimizer_variables(variables, "velocity_hat") if self.amsgrad else []

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        i = self._get_variable_index(variable)
        m, v = self._momentums[i], self._velocities[i]
        vmax = self._velocity_hats[i] if self.amsgrad else None
        p, new_m, new_v, new_vmax = rules.adam(
            variable, ops.cast(gradient, dtype), m, v, vmax, step=ops.cast(self.iterations + 1, dtype),
            lr=ops.cast(learning_rate, dtype), beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon,
            amsgrad=self.amsgrad, eps_hat=self.epsilon_hat, xp=ops,
            **self._terms(variable, ops.cast(learning_rate, dtype), learning_rate))
        self.assign(m, new_m)
        self.assign(v, new_v)
        if self.amsgrad:
            self.assign(vmax, new_vmax)
        self.assign(variable, p)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad, "epsilon_hat": self.epsilon_hat}


@keras.saving.register_keras_serializable(package="adamkit")
class AdamW(Adam):
    """Adam with decoupled weight decay, Keras's default ``weight_decay=0.004``;
    ``decay="independent"`` is the paper's fully decoupled form."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, decay="decoupled", epsilon_hat=False, name="adamkit_adamw", **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, decay, epsilon_hat,
                         name, **kwargs)
