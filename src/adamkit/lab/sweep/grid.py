"""What a sweep trains: the grid of (optimizer, lr, weight decay, seed) cells.

A :class:`SweepSpec` is everything that decides the numbers of a sweep (task, model,
budget, grid). Its fingerprint names the sweep in the storage, so the same command run
again, or on another machine, finds the same trials, and a different command is told
apart instead of merged.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

MAX_POINTS = 1000  # values per axis
MAX_CELLS = 100_000  # cells per sweep: past this a typo, not a plan (each cell is a training run)


def log_range(text, name="range"):
    """Parse ``lo:hi:n`` into ``n`` log-spaced values from ``lo`` to ``hi``, both included.

    A single number is a one-value range. Values are rounded to 6 significant digits so
    that the same text always gives the same floats, whatever the platform.

    >>> log_range("1e-3:1e-1:3")
    (0.001, 0.01, 0.1)
    >>> log_range("3e-4")
    (0.0003,)
    """
    parts = str(text).split(":")
    try:
        if len(parts) == 1:
            lo = hi = float(parts[0])
            n = 1
        elif len(parts) == 3:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} {text!r} is malformed; expected lo:hi:n (e.g. 1e-4:1e-1:4) or one number") from None
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"{name} {text!r}: n must be >= 1 and <= {MAX_POINTS}, got {n}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0 and hi > 0):
        raise ValueError(f"{name} {text!r}: lo and hi must be finite numbers > 0")
    if n == 1 and lo != hi:
        raise ValueError(f"{name} {text!r}: n = 1 needs lo == hi")
    if hi < lo:
        raise ValueError(f"{name} {text!r}: hi must be >= lo")
    values = np.logspace(math.log10(lo), math.log10(hi), n) if n > 1 else np.array([lo])
    values = tuple(float(f"{v:.6g}") for v in values)
    _distinct(name, text, values)
    return values


def _distinct(name, text, values):
    """A grid axis names each value once: a repeated one would be one cell asked for twice."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{name} {text!r} gives {', '.join(f'{v:g}' for v in repeated)} more than once "
                         "(values are rounded to 6 significant digits); use fewer points or a wider range")


@dataclass(frozen=True)
class Cell:
    """One training run of the grid (``role="grid"``) or of the best-vs-best re-run (``"confirm"``)."""

    optimizer: str
    lr: float
    weight_decay: float
    seed: int
    role: str = "grid"

    @property
    def key(self):
        return f"{self.role}/{self.optimizer}/lr={self.lr:.6g}/wd={self.weight_decay:.6g}/seed={self.seed}"

    @property
    def slug(self):
        """A directory name for the run's outputs."""
        return f"{self.role}-{self.optimizer}-lr{self.lr:.6g}-wd{self.weight_decay:.6g}-s{self.seed}"

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class SweepSpec:
    """The settings that decide a sweep's numbers (the storage, workers and output do not)."""

    task: str
    optimizers: tuple
    lrs: tuple
    weight_decays: tuple
    seeds: int = 1
    steps: int | None = None
    quick: bool = False
    model: str | None = None
    schedule: str = "constant"
    init: str | None = None
    data: str | None = None
    search: str = "grid"        # "grid" or "tpe"
    trials: int | None = None   # TPE trials per optimizer

    def validate(self, known_optimizers=None):
        """Raise ValueError naming the first bad field."""
        if not self.optimizers:
            raise ValueError("optimizers: choose at least one")
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers: each at most once, got {','.join(self.optimizers)}")
        if known_optimizers is not None:
            for name in self.optimizers:
                if name not in known_optimizers:
                    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(known_optimizers)}")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        cells = len(self.optimizers) * len(self.lrs) * len(self.weight_decays) * self.seeds
        if cells > MAX_CELLS:
            raise ValueError(f"the grid has {cells} cells (optimizers × lrs × weight decays × seeds); "
                             f"at most {MAX_CELLS}")
        if self.search not in ("grid", "tpe"):
            raise ValueError(f"unknown search {self.search!r}; expected grid or tpe")
        if self.search == "tpe" and (not isinstance(self.trials, int) or self.trials < 1):
            raise ValueError(f"--search tpe needs --trials N with N >= 1, got {self.trials!r}")
        if self.search == "grid" and self.trials is not None:
            raise ValueError("--trials is for --search tpe; a grid runs every cell")
        for name, values in (("lr", self.lrs), ("weight decay", self.weight_decays)):
            if not values or not all(v > 0 and math.isfinite(v) for v in values):
                raise ValueError(f"{name} values must be finite and > 0, got {values!r}")
            _distinct(name, ",".join(f"{v:g}" for v in values), tuple(values))

    def as_dict(self):
        d = asdict(self)
        d["optimizers"], d["lrs"], d["weight_decays"] = list(self.optimizers), list(self.lrs), list(self.weight_decays)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for k in ("optimizers", "lrs", "weight_decays"):
            d[k] = tuple(d[k])
        return cls(**d)

    @property
    def fingerprint(self):
        """12 hex digits of a hash of the settings: the study's name in the storage."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def study_name(self):
        return f"adamkit-sweep-{self.task}-{self.fingerprint}"

    def cells(self):
        """Every grid cell, in a fixed order (optimizer, lr, weight decay, seed)."""
        return [Cell(o, lr, wd, s) for o in self.optimizers for lr in self.lrs
                for wd in self.weight_decays for s in range(self.seeds)]

    def differences(self, saved):
        """Where this spec differs from ``saved``, as ``name: saved X, asked Y`` strings."""
        a, b = self.as_dict(), saved.as_dict()
        return [f"{k}: saved {b.get(k)!r}, asked {a[k]!r}" for k in a if a[k] != b.get(k)]
