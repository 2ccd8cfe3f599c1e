"""adamkit.schedules as Keras learning-rate schedules, and the peak rate of a schedule.

``decay_mode="independent"`` multiplies parameters by ``1 - eta_t * wd`` each step, with
``eta_t = lr_t / reference_learning_rate``. The default reference is the largest rate the
learning rate reaches (:func:`peak_learning_rate`), so that ``eta_t`` stays in [0, 1]:

- a float ``lr0``: reference ``lr0``; ``eta_t = 1`` until a callback lowers the rate
  (``ReduceLROnPlateau``, ``LearningRateScheduler``), then ``lr / lr0``.
- adamkit's :class:`LearningRateSchedule`: reference its ``learning_rate``; ``eta_t`` is the
  schedule's multiplier (warmup, cosine, WSD, ...), as in adamkit's other backends.
- ``CosineDecay``: reference ``warmup_target`` with a warmup, else the initial rate;
  ``eta_t`` rises from ``initial / warmup_target`` to 1 over the warmup, then follows the
  cosine down to ``alpha``.
- ``ExponentialDecay`` (``decay_rate <= 1``), ``InverseTimeDecay``, ``CosineDecayRestarts``
  (``m_mul <= 1``): reference the initial rate; ``eta_t = lr_t / initial`` (each restart
  returns to ``m_mul ** i``).
- ``PolynomialDecay``: reference the larger of the initial and end rates.
- ``PiecewiseConstantDecay``: reference the largest value; ``eta_t = value_i / largest``.
- anything else (a custom schedule, a callable, a rate that grows without bound): no
  default; pass ``reference_learning_rate=``.
"""

import math
import warnings

import keras
from keras import ops

from adamkit import schedules


@keras.saving.register_keras_serializable(package="adamkit")
class LearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate * schedule(step)``: any :mod:`adamkit.schedules` schedule in Keras.

    Args:
        schedule: an :mod:`adamkit.schedules` schedule (or its ``to_config`` dict).
        learning_rate: the base rate the multiplier scales; also the default
            ``reference_learning_rate`` of adamkit's optimizers, so ``eta_t`` is the multiplier.

    >>> from adamkit import schedules
    >>> lr = LearningRateSchedule(schedules.warmup_cosine(1000, 100), learning_rate=1e-3)
    >>> round(float(lr(100)), 6)
    0.001
    """

    def __init__(self, schedule, learning_rate):
        self.schedule = schedule if isinstance(schedule, schedules.Schedule) else schedules.from_config(schedule)
        self.learning_rate = learning_rate

    def multiplier(self, step):
        return self.schedule.value(ops.cast(step, "float32"), ops)

    def __call__(self, step):
        return self.learning_rate * self.multiplier(step)

    def get_config(self):
        return {"schedule": schedules.to_config(self.schedule), "learning_rate": self.learning_rate}


def peak_learning_rate(learning_rate):
    """The largest rate ``learning_rate`` (a float or a schedule) gives, or None if unknown.

    For an adamkit :class:`LearningRateSchedule` this is its ``learning_rate`` unless the
    multiplier can exceed 1. Keras schedules are recognised by exact type, since a subclass
    may change the formula.
    """
    if isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool):
        return float(learning_rate)
    if isinstance(learning_rate, LearningRateSchedule):
        top = learning_rate.schedule.peak()
        return None if top is None else float(learning_rate.learning_rate) * max(1.0, top)
    ks = keras.optimizers.schedules
    kind = type(learning_rate)
    if kind is ks.CosineDecay:
        top = float(learning_rate.initial_learning_rate)
        if learning_rate.warmup_target is not None:
            top = max(top, float(learning_rate.warmup_target))
        return top * max(1.0, float(learning_rate.alpha))
    if kind is ks.ExponentialDecay and float(learning_rate.decay_rate) <= 1:
        return float(learning_rate.initial_learning_rate)
    if kind is ks.InverseTimeDecay and float(learning_rate.decay_rate) >= 0:
        return float(learning_rate.initial_learning_rate)
    if kind is ks.PolynomialDecay:
        return max(float(learning_rate.initial_learning_rate), float(learning_rate.end_learning_rate))
    if kind is ks.PiecewiseConstantDecay:
        return max(float(v) for v in learning_rate.values)
    if kind is ks.CosineDecayRestarts and float(learning_rate._m_mul) <= 1:
        return float(learning_rate.initial_learning_rate) * max(1.0, float(learning_rate.alpha))
    return None


def check_reference(reference, peak, learning_rate):
    """Refuse a reference that is not a positive number; warn where the rate's known peak passes it
    (``eta_t`` then exceeds 1: computed as written, as on every backend, see
    :func:`adamkit.rules.decay_warning`)."""
    if not (isinstance(reference, (int, float)) and not isinstance(reference, bool)
            and reference > 0 and math.isfinite(reference)):
        raise ValueError(f"Invalid reference_learning_rate={reference!r}; expected a finite number > 0")
    if peak is not None and peak > reference * (1 + 1e-6):
        warnings.warn(
            f"reference_learning_rate={reference!r} is below the peak {peak!r} of the learning rate "
            f"{learning_rate!r}: eta_t = lr_t / reference_learning_rate will exceed 1 and decay_mode='independent' "
            f"will shrink parameters by more than weight_decay per step; set reference_learning_rate >= {peak!r}",
            RuntimeWarning, stacklevel=4)
