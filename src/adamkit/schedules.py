"""Learning-rate schedules as pure callables ``step -> multiplier`` of the base rate.

Conventions:

- ``step`` counts updates from 0: ``schedule(0)`` scales the first update. This is
  what torch's LR schedulers give after ``step`` calls to ``scheduler.step()``.
- ``total_steps`` counts every update, warmup included (as optax's
  ``warmup_cosine_decay_schedule``; Keras's ``CosineDecay(warmup_steps=)`` counts its
  ``decay_steps`` after the warmup instead). One number then says how long the run is.
- Past ``total_steps`` a decaying schedule stays at its final value (torch's
  CosineAnnealingLR would rise again).

Each schedule is a frozen dataclass: call it, print it, or rebuild it from
``dataclasses.asdict``. ``value(step, xp)`` computes with any array namespace that has
``cos``, ``minimum``, ``maximum``, ``floor``, ``where``, ``sqrt``, ``power``, ``log``
(NumPy, ``keras.ops``), so the same formula serves NumPy, PyTorch and Keras.

>>> s = warmup_cosine(total_steps=100, warmup_steps=10)
>>> [round(s(k), 3) for k in (0, 5, 10, 55, 100)]
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

import math
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("linear", "cosine", "sqrt")


def _require(ok, message):
    if not ok:
        raise ValueError(message)


def _check_steps(name, value, minimum=0):
    _require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum,
             f"Invalid {name}={value!r}; expected an integer >= {minimum}")


def _check_ratio(name, value):
    _require(isinstance(value, (int, float)) and 0.0 <= value <= 1.0,
             f"Invalid {name}={value!r}; expected 0 <= {name} <= 1")


def _check_gamma(gamma):
    _require(isinstance(gamma, (int, float)) and gamma > 0 and math.isfinite(gamma),
             f"Invalid gamma={gamma!r}; expected a finite number > 0")


def _half_cosine(progress, xp):
    """1 -> 0 along a half cosine as progress goes 0 -> 1."""
    return 0.5 * (1.0 + xp.cos(math.pi * progress))


class Schedule:
    """Base class: ``schedule(step)`` is a float; ``value(step, xp)`` works on arrays."""

    def __call__(self, step):
        if isinstance(step, (int, float, np.integer, np.floating)):
            _require(step >= 0, f"Invalid step={step!r}; expected step >= 0")
            return float(self.value(np.float64(step), np))
        return self.value(step, np)

    def value(self, step, xp):
        raise NotImplementedError

    def peak(self):
        """The largest multiplier the schedule reaches (the reference rate's factor), or None if unbounded."""
        return 1.0  # multipliers validated to lie in [0, 1]


class _Decay:
    """Schedules that multiply by ``gamma`` along the way: bounded by 1 unless ``gamma > 1``."""

    def peak(self):
        return 1.0 if self.gamma <= 1 else None


@dataclass(frozen=True)
class Constant(Schedule):
    def value(self, step, xp):
        return step * 0.0 + 1.0


@dataclass(frozen=True)
class StepDecay(_Decay, Schedule):
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _check_steps("step_size", self.step_size, 1)
        _check_gamma(self.gamma)

    def value(self, step, xp):
        return xp.power(self.gamma, xp.floor(step / self.step_size))


@dataclass(frozen=True)
class MultiStep(_Decay, Schedule):
    milestones: tuple
    gamma: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for m in self.milestones:
            _check_steps("milestones", m, 1)
        _require(list(self.milestones) == sorted(self.milestones),
                 f"Invalid milestones={self.milestones!r}; expected increasing steps")
        _check_gamma(self.gamma)

    def value(self, step, xp):
        passed = step * 0.0
        for m in self.milestones:
            passed = passed + xp.where(step >= m, 1.0, 0.0)
        return xp.power(self.gamma, passed)


@dataclass(frozen=True)
class Exponential(_Decay, Schedule):
    gamma: float

    def __post_init__(self):
        _check_gamma(self.gamma)

    def value(self, step, xp):
        return xp.power(self.gamma, step)


@dataclass(frozen=True)
class Cosine(Schedule):
    total_steps: int
    min_ratio: float = 0.0

    def __post_init__(self):
        _check_steps("total_steps", self.total_steps, 1)
        _check_ratio("min_ratio", self.min_ratio)

    def value(self, step, xp):
        progress = xp.minimum(step / self.total_steps, 1.0)
        return self.min_ratio + (1 - self.min_ratio) * _half_cosine(progress, xp)


@dataclass(frozen=True)
class Linear(Schedule):
    total_steps: int
    start: float = 1.0
    end: float = 0.0

    def __post_init__(self):
        _check_steps("total_steps", self.total_steps, 1)
        _require(self.start >= 0 and self.end >= 0, f"Invalid start={self.start!r} or end={self.end!r}; "
                                                    "expected multipliers >= 0")

    def value(self, step, xp):
        return self.start + (self.end - self.start) * xp.minimum(step / self.total_steps, 1.0)

    def peak(self):
        return max(self.start, self.end)


@dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warmup from ``start_ratio`` to 1 over ``warmup_steps``, then ``after(step - warmup_steps)``."""

    after: Schedule
    warmup_steps: int
    start_ratio: float = 0.0

    def __post_init__(self):
        _check_steps("warmup_steps", self.warmup_steps)
        _check_ratio("start_ratio", self.start_ratio)

    def value(self, step, xp):
        if self.warmup_steps == 0:
            return self.after.value(step, xp)
        ramp = self.start_ratio + (1 - self.start_ratio) * step / self.warmup_steps
        later = self.after.value(xp.maximum(step - self.warmup_steps, 0.0), xp)
        return xp.where(step < self.warmup_steps, ramp, later)

    def peak(self):  # the ramp rises from start_ratio <= 1 towards 1
        after = self.after.peak()
        return None if after is None else max(1.0, after)


@dataclass(frozen=True)
class SGDR(Schedule):
    """Cosine annealing with warm restarts (Loshchilov & Hutter's SGDR, the AdamW paper's AdamWR):
    cycles of ``t0``, ``t0 * t_mult``, ``t0 * t_mult**2``, ... steps."""

    t0: int
    t_mult: int = 1
    min_ratio: float = 0.0

    def __post_init__(self):
        _check_steps("t0", self.t0, 1)
        _check_steps("t_mult", self.t_mult, 1)
        _check_ratio("min_ratio", self.min_ratio)

    def value(self, step, xp):
        if self.t_mult == 1:
            cycle_start, length = xp.floor(step / self.t0) * self.t0, self.t0 + step * 0.0
        else:  # index of the cycle holding `step`; the 1e-9 guards log rounding at restarts
            n = xp.floor(xp.log(step * (self.t_mult - 1) / self.t0 + 1) / math.log(self.t_mult) + 1e-9)
            cycle_start = self.t0 * (xp.power(float(self.t_mult), n) - 1) / (self.t_mult - 1)
            length = self.t0 * xp.power(float(self.t_mult), n)
        return self.min_ratio + (1 - self.min_ratio) * _half_cosine((step - cycle_start) / length, xp)


@dataclass(frozen=True)
class WSD(Schedule):
    """Warmup-stable-decay: linear warmup, a flat stretch at 1, then a decay to ``min_ratio``
    over the last ``decay_steps`` of ``total_steps`` (shape: linear, cosine or 1-sqrt)."""

    total_steps: int
    warmup_steps: int
    decay_steps: int
    min_ratio: float = 0.0
    shape: str = field(default="linear")

    def __post_init__(self):
        _check_steps("total_steps", self.total_steps, 1)
        _check_steps("warmup_steps", self.warmup_steps)
        _check_steps("decay_steps", self.decay_steps, 1)
        _require(self.warmup_steps + self.decay_steps <= self.total_steps,
                 f"Invalid warmup_steps={self.warmup_steps} + decay_steps={self.decay_steps}; "
                 f"expected at most total_steps={self.total_steps}")
        _check_ratio("min_ratio", self.min_ratio)
        _require(self.shape in SHAPES, f"Invalid shape={self.shape!r}; expected one of {SHAPES}")

    def value(self, step, xp):
        start = self.total_steps - self.decay_steps
        progress = xp.minimum(xp.maximum(step - start, 0.0) / self.decay_steps, 1.0)
        if self.shape == "linear":
            fall = 1 - progress
        elif self.shape == "cosine":
            fall = _half_cosine(progress, xp)
        else:
            fall = 1 - xp.sqrt(progress)
        decay = self.min_ratio + (1 - self.min_ratio) * fall
        if self.warmup_steps == 0:
            return decay
        return xp.where(step < self.warmup_steps, step / self.warmup_steps, decay)


def constant():
    """1 at every step."""
    return Constant()


def step_decay(step_size, gamma=0.1):
    """``gamma ** (step // step_size)`` (torch's StepLR)."""
    return StepDecay(step_size, gamma)


def multistep(milestones, gamma=0.1):
    """Multiply by ``gamma`` at each milestone (torch's MultiStepLR)."""
    return MultiStep(tuple(milestones), gamma)


def exponential(gamma):
    """``gamma ** step`` (torch's ExponentialLR)."""
    return Exponential(gamma)


def cosine(total_steps, min_ratio=0.0):
    """Half cosine from 1 to ``min_ratio`` over ``total_steps`` (torch's CosineAnnealingLR)."""
    return Cosine(total_steps, min_ratio)


def linear(total_steps, start=1.0, end=0.0):
    """Straight line from ``start`` to ``end`` over ``total_steps`` (torch's LinearLR)."""
    return Linear(total_steps, start, end)


def warmup(schedule, warmup_steps, start_ratio=0.0):
    """Linear warmup in front of any schedule; ``schedule`` then starts from its own step 0."""
    return Warmup(schedule, warmup_steps, start_ratio)


def warmup_cosine(total_steps, warmup_steps, min_ratio=0.0, start_ratio=0.0):
    """Warmup then cosine to ``min_ratio``; ``total_steps`` includes the warmup."""
    _check_steps("total_steps", total_steps, 1)
    _check_steps("warmup_steps", warmup_steps)
    _require(warmup_steps < total_steps,
             f"Invalid warmup_steps={warmup_steps}; expected fewer than total_steps={total_steps}")
    return Warmup(Cosine(total_steps - warmup_steps, min_ratio), warmup_steps, start_ratio)


def sgdr(t0, t_mult=1, min_ratio=0.0):
    """Cosine with warm restarts (torch's CosineAnnealingWarmRestarts)."""
    return SGDR(t0, t_mult, min_ratio)


def wsd(total_steps, warmup_steps, decay_steps, min_ratio=0.0, shape="linear"):
    """Warmup-stable-decay (Hägele et al., 2024): the schedule that needs no fixed horizon."""
    return WSD(total_steps, warmup_steps, decay_steps, min_ratio, shape)


def to_config(schedule):
    """A JSON-ready dict that :func:`from_config` turns back into the schedule."""
    fields = {k: to_config(v) if isinstance(v, Schedule) else (list(v) if isinstance(v, tuple) else v)
              for k, v in schedule.__dict__.items()}
    return {"class_name": type(schedule).__name__, "config": fields}


def from_config(config):
    """Rebuild a schedule written by :func:`to_config`."""
    classes = {c.__name__: c for c in (Constant, StepDecay, MultiStep, Exponential, Cosine, Linear, Warmup,
                                       SGDR, WSD)}
    if config.get("class_name") not in classes:
        raise ValueError(f"Invalid schedule class_name={config.get('class_name')!r}; expected one of "
                         f"{', '.join(classes)}")
    fields = {k: from_config(v) if isinstance(v, dict) and "class_name" in v else v
              for k, v in config["config"].items()}
    return classes[config["class_name"]](**fields)
