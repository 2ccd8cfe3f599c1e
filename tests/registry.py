"""The test registry: one declared table, from which ``test_registry.py`` generates the
kernel-versus-reference, torch.optim parity, checkpoint round-trip, bad-input and ``meta``
placement tests (torch's ``OptimizerInfo``, optimi's variant specs).

An algorithm is an :class:`Entry` here; the kernels, dtypes, decay modes, rounding modes and
state formats come from the records themselves (:data:`adamkit.rules.ALGORITHMS`,
:data:`adamkit.rules.DECAY_MODES`, :data:`adamkit.torch.kernels.KERNELS`). Adding an algorithm
adds its entry; adding a kernel, a decay mode or a state format adds rows with no test change.
The cross product is sampled: every (kernel, algorithm, param dtype) meets every decay mode,
and rounding modes, state dtypes and flags rotate through those rows so that each value of
each meets every kernel.
"""

import itertools
from dataclasses import dataclass, field

import pytest
import torch

import adamkit.torch as ak
from adamkit import rules
from adamkit.torch import kernels

HALF = (torch.bfloat16, torch.float16)
DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
# State formats other than the param's that rows try: float dtypes, and the quantized formats of
# adamkit.rules.STATE_FORMATS where a kernel declares them.
STATE_DTYPES = (torch.float32, torch.bfloat16, *rules.STATE_FORMATS)


@dataclass(frozen=True)
class Entry:
    """How the tests build one algorithm, and the peer it must match."""

    cls: type  # the adamkit.torch class
    kwargs: dict  # hyperparameters every row uses (weight decay included)
    flags: dict  # boolean options, each row takes one combination
    peer: dict  # decay mode -> (torch.optim class, extra kwargs), where torch.optim has that mode
    bad: list = field(default_factory=list)  # (kwargs, exception, message) refused when built


ENTRIES = {
    "adam": Entry(ak.AdamW, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2),
                  dict(amsgrad=(False, True), maximize=(False, True)),
                  {"l2": (torch.optim.Adam, {}), "decoupled": (torch.optim.AdamW, {})},
                  [(dict(lr=-1.0), ValueError, "learning rate"), (dict(betas=(1.0, 0.9)), ValueError, "beta"),
                   (dict(eps=-1e-8), ValueError, "epsilon"), (dict(weight_decay=-0.1), ValueError, "weight_decay"),
                   (dict(decay="ridge"), ValueError, "decay"), (dict(impl="fast"), ValueError, "impl"),
                   (dict(rounding="up"), ValueError, "rounding"), (dict(state_dtype=torch.int8), ValueError,
                                                                    "state_dtype"),
                   (dict(lr="1e-3"), TypeError, "lr must be a number")]),
    "sgd": Entry(ak.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.2),
                 dict(nesterov=(False, True), maximize=(False, True)),
                 {"l2": (torch.optim.SGD, {})},
                 [(dict(lr=-1.0), ValueError, "learning rate"), (dict(momentum=-0.5), ValueError, "momentum"),
                  (dict(weight_decay=-0.1), ValueError, "weight_decay"), (dict(decay="ridge"), ValueError, "decay"),
                  (dict(impl="fast"), ValueError, "impl")]),
    "stable_adamw": Entry(ak.StableAdamW, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2),
                          dict(maximize=(False, True)), {},
                          [(dict(lr=-1.0), ValueError, "learning rate"), (dict(betas=(0.9, 1.0)), ValueError, "beta"),
                           (dict(eps=-1e-6), ValueError, "epsilon"),
                           (dict(weight_decay=-0.1), ValueError, "weight_decay"),
                           (dict(decay="ridge"), ValueError, "decay"), (dict(impl="fast"), ValueError, "impl"),
                           (dict(state_dtype=torch.int8), ValueError, "state_dtype"),
                           (dict(lr="1e-3"), TypeError, "lr must be a number")]),
    "ademamix": Entry(ak.AdEMAMix, dict(lr=1e-2, betas=(0.8, 0.99, 0.999), alpha=4.0, eps=1e-6, weight_decay=0.2,
                                        t_alpha=4, t_beta3=6),
                      dict(maximize=(False, True)), {},
                      [(dict(lr=-1.0), ValueError, "learning rate"), (dict(betas=(0.9, 0.999)), ValueError, "betas"),
                       (dict(betas=(0.9, 0.999, 1.0)), ValueError, r"betas\[2\]"),
                       (dict(alpha=-1.0), ValueError, "alpha"), (dict(eps=-1e-8), ValueError, "epsilon"),
                       (dict(t_alpha=0), ValueError, "t_alpha"), (dict(t_beta3=-5), ValueError, "t_beta3"),
                       (dict(betas=(0.0, 0.999, 0.9999)), ValueError, "t_beta3"),
                       (dict(weight_decay=-0.1), ValueError, "weight_decay"),
                       (dict(decay="ridge"), ValueError, "decay"), (dict(impl="fast"), ValueError, "impl"),
                       (dict(state_dtype=torch.int8), ValueError, "state_dtype")]),
}


@dataclass(frozen=True)
class Case:
    algorithm: str
    kernel: str
    dtype: torch.dtype
    decay: str
    rounding: str = "nearest"
    state_dtype: torch.dtype | None = None
    flags: tuple = ()  # (name, value) pairs

    @property
    def id(self):
        flags = "-".join(name for name, on in self.flags if on)
        parts = [self.algorithm, self.kernel, str(self.dtype).split(".")[1], self.decay, self.rounding,
                 f"state-{str(self.state_dtype).split('.')[-1]}" if self.state_dtype else "", flags]
        return "-".join(p for p in parts if p)

    @property
    def format(self):
        """The quantized state format of this row (a :class:`adamkit.rules.StateFormat`), or None."""
        return rules.STATE_FORMATS.get(self.state_dtype) if isinstance(self.state_dtype, str) else None

    def options(self):
        """Constructor keywords of this row."""
        entry = ENTRIES[self.algorithm]
        out = dict(entry.kwargs, decay=self.decay, impl=self.kernel, rounding=self.rounding, **dict(self.flags))
        if self.state_dtype is not None:
            out["state_dtype"] = self.state_dtype
        if self.algorithm == "sgd" and dict(self.flags).get("nesterov"):
            out["dampening"] = 0.0  # Nesterov needs none
        return out


def cases():
    """Every registry row that runs on this machine (CPU; Triton under its interpreter)."""
    out = []
    for kernel in kernels.KERNELS.values():
        if not (kernel.runs_on("cpu") and kernel.available()):
            continue
        for algorithm in sorted(kernel.algorithms & ENTRIES.keys()):
            entry = ENTRIES[algorithm]
            combos = list(itertools.product(*[[(name, v) for v in values] for name, values in entry.flags.items()]))
            for dtype in (d for d in DTYPES if d in kernel.dtypes):
                roundings = sorted(kernel.roundings) if dtype in HALF else ["nearest"]
                formats = {f for slot in rules.ALGORITHMS[algorithm].slots for f in slot.formats}
                states = [None] + [s for s in STATE_DTYPES if s != dtype and kernel.keeps(s, dtype)
                                   and ("quantized" if isinstance(s, str) else "float") in formats]
                for i, decay in enumerate(rules.DECAY_MODES):
                    case = Case(algorithm, kernel.name, dtype, decay, roundings[i % len(roundings)],
                                states[i % len(states)], combos[i % len(combos)])
                    if kernels.shortfall(kernel, _need(case)) is None:
                        out.append(case)
    return out


def _need(case):
    return kernels.Need(case.algorithm, "cpu", case.dtype, case.state_dtype, case.rounding,
                        case.decay == "l1", False, False)


def marked(rows):
    """pytest params, Triton's interpreter rows `slow` but one (seconds each)."""
    seen_triton = False
    out = []
    for c in rows:
        slow = c.kernel == "triton" and seen_triton
        seen_triton |= c.kernel == "triton"
        out.append(pytest.param(c, id=c.id, marks=[pytest.mark.slow] if slow else []))
    return out
