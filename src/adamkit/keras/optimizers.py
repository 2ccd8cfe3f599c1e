"""Keras 3 optimizers over :mod:`adamkit.rules`, on the TensorFlow, JAX and PyTorch backends.

They speak Keras's dialect (``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``,
``weight_decay``, ``exclude_from_weight_decay``) and add ``decay_mode=`` with the five modes.
As in Keras, ``weight_decay`` alone means decoupled decay (``decay_mode="decoupled"``);
``decay_mode="l2"`` is ``torch.optim.Adam``'s coupled penalty. Keras's base class would apply
decoupled decay on its own for any ``weight_decay``: here the rule applies it, once.

``epsilon`` is added after the bias correction of ``sqrt(v)`` (PyTorch's placement), so
results match :mod:`adamkit.torch`; ``epsilon_hat=True`` gives Keras's placement and the
results of ``keras.optimizers.Adam``/``AdamW``.

Variables in bfloat16 or float16 (a model built under
``keras.config.set_dtype_policy("bfloat16")``) are updated in float32 and written back by
``rounding=``: to nearest, with Kahan compensation, or stochastically (see
:mod:`adamkit.keras.rounding`). On the torch backend the step runs through adamkit.torch's
multi-tensor kernels, as Keras's own optimizers run theirs through ``torch._foreach_*``.
"""

import random
import warnings

import keras
from keras import ops

from adamkit import _checks, rules
from adamkit.keras import rounding as rnd
from adamkit.keras.schedules import check_reference, peak_learning_rate

_ARGS = {
    "learning_rate": """learning_rate: a float, a ``keras.optimizers.schedules.LearningRateSchedule``
            (adamkit's :class:`~adamkit.keras.LearningRateSchedule` included) or a callable
            returning the rate.""",
    "weight_decay": """weight_decay: ``wd``, the strength of the decay chosen by ``decay_mode``;
            None or 0 for none. Variables named in ``exclude_from_weight_decay`` are not
            decayed.""",
    "decay_mode": """decay_mode: how ``weight_decay`` acts (default ``"decoupled"``, Keras's):
            ``"l2"``: ``g <- g + wd * p``; ``"l1"``: ``g <- g + wd * sign(p)``;
            ``"decoupled"``: ``p <- p * (1 - lr_t * wd)``; ``"independent"``:
            ``p <- p * (1 - eta_t * wd)`` with ``eta_t = lr_t / reference_learning_rate``
            (Loshchilov & Hutter's fully decoupled decay); ``"corrected"``:
            ``p <- p * (1 - lr_t * eta_t * wd)`` (AdamC). Every mode is computed as written for
            any rate, as on the other backends; a factor outside (0, 1] or an ``eta_t`` above 1
            that Python can see is warned about once.""",
    "decay": """decay: alias of ``decay_mode``. A number is refused with an explanation:
            tf.keras read ``decay=`` as a learning-rate decay, which Keras 3 dropped.""",
    "reference_learning_rate": """reference_learning_rate: ``lr_ref`` of ``decay_mode="independent"``.
            Default: the peak of ``learning_rate`` where it is known (the float itself, an
            adamkit schedule's ``learning_rate``, ``CosineDecay``'s ``warmup_target``,
            ``PiecewiseConstantDecay``'s largest value, ...: see
            :mod:`adamkit.keras.schedules`); required for other schedules. A reference below a
            known peak, or a float ``learning_rate`` set above it later, is warned about.""",
    "rounding": """rounding: how the fp32 result reaches a bfloat16 or float16 variable: ``"nearest"``
            (default), ``"kahan"`` (an optimizer variable ``kahan_comp`` per half-precision variable
            keeps what rounding drops; it is saved with the optimizer) or ``"stochastic"`` (unbiased,
            from a counter-based stream: the same seed gives the same result on every backend and in
            adamkit.torch). Float32 variables are written exactly whatever the mode.
        rounding_seed: an integer in [0, 2**64) keying the stochastic stream; default drawn from
            Python's ``random`` (which ``keras.utils.set_random_seed`` seeds) and kept in the config.""",
    "kwargs": """**kwargs: Keras's base optimizer arguments (``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``,
            ``loss_scale_factor``, ``gradient_accumulation_steps``, ``name``).""",
    "momentum": """momentum: ``mu``, a float in [0, 1] (Keras's range).""",
    "nesterov": """nesterov: Nesterov momentum; with ``momentum=0`` it changes nothing, as in Keras.""",
    "adam": """beta_1, beta_2: decay rates of the first and second moments, in [0, 1).
        epsilon: added to the denominator, > 0.
        amsgrad: divide by the running maximum of ``v`` (Reddi et al.).
        epsilon_hat: add ``epsilon`` to the uncorrected ``sqrt(v)``, as Keras does; the
            default adds it after the bias correction, as PyTorch does.""",
}


def _args(*names):
    return "\n    Args:\n" + "\n".join("        " + _ARGS[n] for n in names) + "\n"


def _decay_mode(decay_mode, decay):
    """Resolve ``decay_mode=`` and its alias ``decay=`` to one mode."""
    if decay is not None:
        if not isinstance(decay, str):
            raise ValueError(
                f"Invalid decay={decay!r}: in adamkit, decay= is an alias of decay_mode=, the weight-decay mode "
                f"(one of {', '.join(map(repr, tuple(rules.DECAY_MODES)))}). tf.keras read a number there as a "
                f"learning-rate decay, lr / (1 + decay * step), which Keras 3 no longer supports; for that pass "
                f"learning_rate=keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, "
                f"decay_rate={decay!r}).")
        if decay_mode is not None and decay_mode != decay:
            raise ValueError(f"Invalid decay={decay!r} with decay_mode={decay_mode!r}: decay= is an alias of "
                             "decay_mode=; give one of them")
        decay_mode = decay
    decay_mode = "decoupled" if decay_mode is None else decay_mode
    _checks.check_choice(decay_mode, "decay_mode", tuple(rules.DECAY_MODES))
    return decay_mode


def _dense(gradient):
    """The dense gradient a sparse one stands for (rows a batch repeats summed).

    TensorFlow hands an Embedding's gradient over as ``tf.IndexedSlices``, the rows the batch
    looked up. Adam's moments and every decay mode change all rows, so the rule needs the
    whole gradient, as Keras's optimizers also densify it.
    """
    if type(gradient).__name__ == "IndexedSlices":
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return ops.convert_to_tensor(gradient, sparse=False)  # JAX's BCOO; a no-op for dense arrays


def _rounding_seed(seed):
    if seed is None:
        return random.getrandbits(64)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"Invalid rounding_seed={seed!r}; expected an integer in [0, 2**64) or None")
    return seed


class _Base(keras.optimizers.Optimizer):
    def __init__(self, learning_rate, weight_decay, decay_mode, decay, reference_learning_rate, rounding="nearest",
                 rounding_seed=None, **kwargs):
        decay_mode = _decay_mode(decay_mode, decay)
        _checks.check_choice(rounding, "rounding", rnd.ROUNDINGS)
        rounding_seed = _rounding_seed(rounding_seed)
        if weight_decay is not None:
            _checks.check_nonnegative(weight_decay, "weight_decay")
        if isinstance(learning_rate, (int, float)):
            _checks.check_lr(learning_rate, "learning_rate")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.decay_mode = decay_mode
        self.rounding, self.rounding_seed = rounding, rounding_seed
        self._reference_given = reference_learning_rate is not None
        self._reference = None
        if self._reference_given:
            self.reference_learning_rate = reference_learning_rate
        else:
            self._derive_reference(learning_rate)
        self._warn_at_peak(peak_learning_rate(learning_rate), weight_decay)

    def _warn_at_peak(self, peak, weight_decay):
        """Say now what a traced step will compute without a word: a decay factor outside (0, 1] at the peak rate."""
        if peak is None or not weight_decay:
            return
        eta = rules.schedule_multiplier(peak, self._reference)
        terms = rules.decay_terms(self.decay_mode, weight_decay, peak, eta)
        warning = rules.decay_warning(self.decay_mode, terms, lr=peak, weight_decay=weight_decay,
                                      reference_lr=self._reference, eta=eta)
        if warning and warning.kind == "factor":
            warnings.warn(warning.message, RuntimeWarning, stacklevel=4)

    def _derive_reference(self, learning_rate):
        peak = peak_learning_rate(learning_rate)
        if peak is None and rules.DECAY_MODES[self.decay_mode].reads_eta:
            raise ValueError(
                f"decay_mode={self.decay_mode!r} needs reference_learning_rate= with learning_rate={learning_rate!r}: "
                "eta_t = lr_t / reference_learning_rate, and the peak of this learning rate is not known; pass the "
                "rate at which the decay should have its full strength weight_decay (usually the peak)")
        self._reference = peak

    def _current_peak(self):
        if isinstance(self._learning_rate, keras.Variable):
            return float(ops.convert_to_numpy(self._learning_rate))
        return peak_learning_rate(self._learning_rate)

    @property
    def reference_learning_rate(self):
        """``lr_ref`` in ``eta_t = lr_t / lr_ref`` (``decay_mode="independent"``); None if unknown."""
        return self._reference

    @reference_learning_rate.setter
    def reference_learning_rate(self, value):
        check_reference(value, self._current_peak(), self._learning_rate)
        self._reference, self._reference_given = float(value), True

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        # Python sees every rate set here (ReduceLROnPlateau, LearningRateScheduler): a rate above
        # the reference is said now, since a traced step computes it without a word.
        independent = rules.DECAY_MODES[self.decay_mode].reads_eta
        if callable(value) and self._reference_given:
            if independent:
                check_reference(self._reference, peak_learning_rate(value), value)
        elif callable(value):
            self._derive_reference(value)
        elif independent and float(value) > self._reference * (1 + 1e-6):
            warnings.warn(f"learning_rate={float(value)!r} is above reference_learning_rate={self._reference!r}: "
                          f"with decay_mode={self.decay_mode!r} eta_t = lr_t / reference_learning_rate exceeds 1; "
                          "raise reference_learning_rate first", RuntimeWarning, stacklevel=2)
        keras.optimizers.Optimizer.learning_rate.fset(self, value)

    def _apply_weight_decay(self, variables):
        """Keras's base decays before every step; adamkit's rule does it in ``update_step``."""

    def _decay(self, variable):
        return self.weight_decay if self.weight_decay and self._use_weight_decay(variable) else 0.0

    def _eta(self, learning_rate, dtype):
        """``eta_t = lr_t / lr_ref`` for the modes that read it, as written (never clipped: the same
        numbers as adamkit.torch and adamkit.numpy, in Python and inside traced steps)."""
        if not rules.DECAY_MODES[self.decay_mode].reads_eta:
            return 1.0
        return ops.cast(learning_rate, dtype) / self._reference

    def _warn_once(self, warning):
        """A :class:`adamkit.rules.DecayWarning`, said once per kind (from eager torch-backend steps)."""
        said = self.__dict__.setdefault("_said", set())
        if warning.kind not in said:
            said.add(warning.kind)
            warnings.warn(warning.message, RuntimeWarning, stacklevel=4)

    def _slots(self, name):
        """The optimizer variables holding the algorithm record's slot ``name`` (empty where not kept)."""
        return getattr(self, self._SLOTS[name], [])

    def _terms(self, variable, lr, learning_rate):
        eta = self._eta(learning_rate, rnd.math_dtype(variable.dtype))
        return rules.decay_terms(self.decay_mode, self._decay(variable), lr, eta)._asdict()

    def build(self, variables):
        super().build(variables)
        self._kahan_comps = [self.add_variable_from_reference(v, "kahan_comp")
                             if self.rounding == "kahan" and v.dtype in rnd.HALF else None for v in variables]

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() == "torch":  # one multi-tensor step instead of one eager rule per variable
            from adamkit.keras import torch_step

            return torch_step.update(self, grads, trainable_variables, learning_rate)
        return super()._backend_update_step(grads, trainable_variables, learning_rate)

    def _read(self, variable, i):
        """The variable's value for the math: fp32 for half precision, plus the Kahan compensation."""
        if variable.dtype not in rnd.HALF:
            return variable
        return rnd.read(variable, self._kahan_comps[i])

    def _write(self, variable, i, new):
        """Store the fp32 (or wider) result ``new`` into ``variable`` by ``rounding``."""
        dtype = variable.dtype
        if not rnd.applies(self.rounding, dtype):
            self.assign(variable, ops.cast(new, dtype))
        elif self.rounding == "kahan":
            rounded = ops.cast(new, dtype)
            self.assign(variable, rounded)
            self.assign(self._kahan_comps[i], ops.cast(new - ops.cast(rounded, "float32"), dtype))
        else:
            key = rnd.tensor_key(self.rounding_seed, i, self.iterations + 1)
            self.assign(variable, rnd.stochastic(new, dtype, key))

    def get_config(self):
        return {**super().get_config(), "decay_mode": self.decay_mode,
                "reference_learning_rate": self._reference, "rounding": self.rounding,
                "rounding_seed": self.rounding_seed}


@keras.saving.register_keras_serializable(package="adamkit")
class SGD(_Base):
    __doc__ = r"""Gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        d &= g + \text{coupled decay}(p), \qquad p \leftarrow s \cdot p \\
        b &= d \ \text{(first step)}, \quad b = \mu b + d \ \text{(later)} \\
        p &\leftarrow p - \text{lr}_t \cdot (d + \mu b \ \text{if nesterov else } b)

    where ``s`` is the decoupled shrink factor (1 for the coupled modes). At a constant
    learning rate this equals Keras's ``v = mu*v - lr*g; p += v``. With ``momentum=0`` and
    no decay, an Embedding's sparse gradient (``tf.IndexedSlices``) stays a sparse update,
    as in Keras's SGD.
    """ + _args("learning_rate", "momentum", "nesterov", "weight_decay", "decay_mode", "decay",
                "reference_learning_rate", "rounding", "kwargs")

    algorithm = "sgd"
    _SLOTS = {"momentum_buffer": "_momentums"}

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, decay_mode=None,
                 reference_learning_rate=None, decay=None, rounding="nearest", rounding_seed=None, **kwargs):
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")
        super().__init__(learning_rate, weight_decay, decay_mode, decay, reference_learning_rate, rounding,
                         rounding_seed, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum else []

    def update_step(self, gradient, variable, learning_rate):
        dtype = rnd.math_dtype(variable.dtype)
        lr = ops.cast(learning_rate, dtype)
        wd = self._decay(variable)
        if not self.momentum and not wd and dtype == variable.dtype:  # a sparse gradient stays a sparse update
            self.assign_sub(variable, ops.multiply(ops.cast(gradient, dtype), lr))
            return
        i = self._get_variable_index(variable)
        buf = self._momentums[i] if self.momentum else None
        p, new_buf = rules.sgd(self._read(variable, i), ops.cast(_dense(gradient), dtype),
                               None if buf is None else ops.cast(buf, dtype), lr=lr, momentum=self.momentum,
                               nesterov=self.nesterov, xp=ops, **self._terms(variable, lr, learning_rate))
        if self.momentum:
            self.assign(buf, ops.cast(new_buf, buf.dtype))
        self._write(variable, i, p)

    def _scalar_bundle(self, lr, terms, step):
        return rules.SGDScalars(lr, self.momentum, 0.0, self.nesterov, *terms, False)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="adamkit")
class Adam(_Base):
    __doc__ = r"""Adam (Kingma & Ba) with a weight-decay mode; ``weight_decay`` alone is decoupled, as in Keras.

    .. math::
        g &\leftarrow g + \text{coupled decay}(p), \qquad p \leftarrow s \cdot p \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        p &\leftarrow p - \text{lr}_t \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}

    where ``s`` is the decoupled shrink factor (1 for the coupled modes) and ``v`` becomes
    ``max(v_max, v)`` with ``amsgrad``. ``epsilon_hat=True`` uses
    ``sqrt(v) + epsilon`` before the bias correction (Keras's numbers). An Embedding's
    ``tf.IndexedSlices`` gradient acts as the dense gradient it stands for; Keras's Adam
    squares the slices of a row that a batch repeats apart before summing them.
    """ + _args("learning_rate", "adam", "weight_decay", "decay_mode", "decay", "reference_learning_rate",
                "rounding", "kwargs")

    algorithm = "adam"
    _SLOTS = {"exp_avg": "_momentums", "exp_avg_sq": "_velocities", "max_exp_avg_sq": "_velocity_hats"}

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, decay_mode=None, epsilon_hat=False, reference_learning_rate=None, decay=None,
                 rounding="nearest", rounding_seed=None, **kwargs):
        _checks.check_beta(beta_1, "beta_1")
        _checks.check_beta(beta_2, "beta_2")
        _checks.check_eps(epsilon, "epsilon")
        super().__init__(learning_rate, weight_decay, decay_mode, decay, reference_learning_rate, rounding,
                         rounding_seed, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad, self.epsilon_hat = amsgrad, epsilon_hat

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums, self._velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        self._velocity_hats = self.add_optimizer_variables(variables, "velocity_hat") if self.amsgrad else []

    def update_step(self, gradient, variable, learning_rate):
        dtype = rnd.math_dtype(variable.dtype)
        i = self._get_variable_index(variable)
        m, v = self._momentums[i], self._velocities[i]
        vmax = self._velocity_hats[i] if self.amsgrad else None
        lr = ops.cast(learning_rate, dtype)
        p, new_m, new_v, new_vmax = rules.adam(
            self._read(variable, i), ops.cast(_dense(gradient), dtype), ops.cast(m, dtype), ops.cast(v, dtype),
            None if vmax is None else ops.cast(vmax, dtype), step=ops.cast(self.iterations + 1, dtype), lr=lr,
            beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon, amsgrad=self.amsgrad, eps_hat=self.epsilon_hat,
            xp=ops, **self._terms(variable, lr, learning_rate))
        self.assign(m, ops.cast(new_m, m.dtype))
        self.assign(v, ops.cast(new_v, v.dtype))
        if self.amsgrad:
            self.assign(vmax, ops.cast(new_vmax, vmax.dtype))
        self._write(variable, i, p)

    def _scalar_bundle(self, lr, terms, step):
        eps = self.epsilon / (1 - self.beta_2**step) ** 0.5 if self.epsilon_hat else self.epsilon
        return rules.AdamScalars(lr, self.beta_1, self.beta_2, eps, *terms, self.amsgrad, False)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad, "epsilon_hat": self.epsilon_hat}


@keras.saving.register_keras_serializable(package="adamkit")
class AdamW(Adam):
    __doc__ = """Adam with decoupled weight decay, Keras's ``AdamW`` defaults (``weight_decay=0.004``).

    The update is :class:`Adam`'s; ``decay_mode="independent"`` is the paper's fully
    decoupled form. ``weight_decay=None`` is refused, as Keras's ``AdamW`` does.
    """ + _args("learning_rate", "weight_decay", "adam", "decay_mode", "decay", "reference_learning_rate",
                "rounding", "kwargs")

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, decay_mode=None, epsilon_hat=False, reference_learning_rate=None, decay=None,
                 rounding="nearest", rounding_seed=None, **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, decay_mode, epsilon_hat,
                         reference_learning_rate, decay, rounding, rounding_seed, **kwargs)
