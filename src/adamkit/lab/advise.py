"""How much weight decay? Two published rules with the numbers plugged in, or what a sweep measured.

Notation: ``N`` training examples, batch size ``B``, ``E`` epochs, base learning rate
``lr0``; ``K = N/B`` iterations per epoch and ``T = K·E`` iterations in all.

Decay modes (see :mod:`adamkit.rules`): ``independent`` shrinks ``p ← p·(1 − η_t·λ)``
(η_t the schedule's multiplier, the AdamW paper's form); ``decoupled`` shrinks
``p ← p·(1 − lr_t·λ)`` (torch.optim.AdamW). For one ``lr0`` they are the same run when
``λ_independent = lr0 · λ_decoupled``, so every number below converts exactly.

1. Normalized weight decay (Loshchilov & Hutter, 2019):
   ``λ_independent = λ_norm · sqrt(B / (N·E)) = λ_norm / sqrt(T)``, with ``λ_norm`` about
   0.025–0.05 in the paper's experiments: the longer the run, the less decay per step.
2. EMA timescale (Wang & Aitchison, 2024): AdamW's weights are an exponential moving
   average of recent updates over ``τ_iter = 1/(lr0·λ_decoupled) = 1/λ_independent``
   iterations; keep ``τ`` between about one epoch (``K``) and the whole run (``T``), i.e.
   ``1/T ≤ λ_independent ≤ 1/K``.

The suggestion is rule 1, moved to the nearer end of rule 2's window when it falls outside.
Coupled L2 or L1 (Adam + L2/L1) goes through Adam's normalisation and has no exact
equivalent here, so the rules are stated for decoupled decay only.
"""

import math
from dataclasses import dataclass

MODES = ("decoupled", "independent")
LAMBDA_NORM = 0.05
LAMBDA_NORM_RANGE = (0.025, 0.05)


def _positive(name, value, integer=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        raise ValueError(f"{name} must be a {'positive integer' if integer else 'finite number > 0'}, got {value!r}")


@dataclass(frozen=True)
class Advice:
    """Every number of the reasoning, in the independent form (``lr0`` converts to decoupled)."""

    dataset_size: int
    batch_size: int
    epochs: float
    lr: float
    decay: str
    lambda_norm: float

    def __post_init__(self):
        _positive("dataset size", self.dataset_size, integer=True)
        _positive("batch size", self.batch_size, integer=True)
        _positive("epochs", self.epochs)
        _positive("lr", self.lr)
        _positive("lambda_norm", self.lambda_norm)
        if self.decay not in MODES:
            raise ValueError(f"decay {self.decay!r}: these rules hold for decoupled weight decay; expected one of "
                             f"{', '.join(MODES)} (Adam + L2/L1 has no exact equivalent)")
        if self.batch_size > self.dataset_size:
            raise ValueError(f"batch size {self.batch_size} exceeds the dataset size {self.dataset_size}")

    @property
    def iters_per_epoch(self):
        return self.dataset_size / self.batch_size

    @property
    def iterations(self):
        return self.iters_per_epoch * self.epochs

    def normalized(self, lambda_norm=None):
        """Rule 1, independent form: ``λ_norm · sqrt(B/(N·E))``."""
        return (lambda_norm or self.lambda_norm) * math.sqrt(self.batch_size / (self.dataset_size * self.epochs))

    @property
    def window(self):
        """Rule 2, independent form: ``(1/T, 1/K)`` (τ between the whole run and one epoch)."""
        return 1 / self.iterations, 1 / self.iters_per_epoch

    @property
    def suggestion(self):
        lo, hi = self.window
        return min(max(self.normalized(), lo), hi)

    def in_mode(self, value):
        """An independent-form weight decay in this advice's mode."""
        return value if self.decay == "independent" else value / self.lr

    def timescale_epochs(self, value):
        """τ in epochs for an independent-form weight decay: ``(1/λ) / K``."""
        return 1 / value / self.iters_per_epoch

    def lines(self):
        """The suggestion and its reasoning, one line each, numbers plugged in."""
        m, f = self.decay, (lambda v: f"{v:.3g}")
        K, T, lr = self.iters_per_epoch, self.iterations, self.lr
        lo, hi = self.window
        s, n = self.suggestion, self.normalized()
        conv = "" if m == "independent" else f" = λ_independent / lr0 (lr0 = {f(lr)})"
        count = (lambda v: f"{v:.6g}")
        in_mode = "" if m == "independent" else f" → {f(self.in_mode(n))} ({m}){conv}"
        out = [f"suggested weight decay ({m}): {f(self.in_mode(s))}",
               f"  iterations: K = N/B = {self.dataset_size}/{self.batch_size} = {count(K)} per epoch, "
               f"T = K·E = {count(T)} in all",
               f"1. normalized weight decay (Loshchilov & Hutter): λ = λ_norm·sqrt(B/(N·E)) = "
               f"{f(self.lambda_norm)}·sqrt({self.batch_size}/({self.dataset_size}·{self.epochs:g})) = "
               f"{f(n)} (independent){in_mode}",
               f"   λ_norm {f(LAMBDA_NORM_RANGE[0])}–{f(LAMBDA_NORM_RANGE[1])} (the paper's range) gives "
               f"{f(self.in_mode(self.normalized(LAMBDA_NORM_RANGE[0])))}–"
               f"{f(self.in_mode(self.normalized(LAMBDA_NORM_RANGE[1])))} ({m})",
               f"2. EMA timescale (Wang & Aitchison): τ_iter = 1/(lr0·λ_decoupled) = 1/λ_independent; "
               f"rule 1 gives τ = {count(1 / n)} iterations = {f(self.timescale_epochs(n))} epochs",
               f"   τ between one epoch ({count(K)} it.) and the whole run ({count(T)} it.) means {m} weight decay in "
               f"[{f(self.in_mode(lo))}, {f(self.in_mode(hi))}]"]
        if s != n:
            side = "the whole run" if n < lo else "one epoch"
            out.append(f"   rule 1 falls outside that window: the suggestion is moved to its edge "
                       f"(τ = {side})")
        other = "decoupled" if m == "independent" else "independent"
        out.append(f"same run in the {other} form: {f(s if other == 'independent' else s / lr)} "
                   f"(independent λ = lr0 × decoupled λ, lr0 = {f(lr)})")
        return out


def _shown(text):
    """A name read from a file, safe for a terminal: control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def _number(value, where, positive=False, optional=False):
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ValueError(f"{where} is {value!r}, not a finite number{' > 0' if positive else ''}")


def check_summary(summary):
    """Raise ValueError naming the first field of a sweep's summary.json that is missing or of
    the wrong type, so that nothing below fails half-way through."""
    if not isinstance(summary, dict):
        raise ValueError(f"expected a JSON object, got {type(summary).__name__}")
    for key, kind in (("task", str), ("metric", str), ("higher_is_better", bool), ("optimizers", dict)):
        if not isinstance(summary.get(key), kind):
            raise ValueError(f"{key!r} is {summary.get(key)!r}, not a {kind.__name__}")
    seeds = summary.get("seeds")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"'seeds' is {seeds!r}, not an integer >= 1")
    for name, o in summary["optimizers"].items():
        if not isinstance(o, dict):
            raise ValueError(f"optimizer {name!r} is {type(o).__name__}, not an object")
        best = o.get("best")
        if best is not None:
            if not isinstance(best, dict):
                raise ValueError(f"{name}.best is not an object")
            _number(best.get("lr"), f"{name}.best.lr", positive=True)
            _number(best.get("weight_decay"), f"{name}.best.weight_decay")
            for key in ("val", "test"):
                _number(best.get(key), f"{name}.best.{key}", optional=True)
        if not isinstance(o.get("verdict", ""), str):
            raise ValueError(f"{name}.verdict is not a string")
        rows = o.get("rows", [])
        if not isinstance(rows, list):
            raise ValueError(f"{name}.rows is not a list")
        for k, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"{name}.rows[{k}] is not an object")
            _number(row.get("lr"), f"{name}.rows[{k}].lr", positive=True)
            for key in ("best_wd", "edge_wd"):
                _number(row.get(key), f"{name}.rows[{k}].{key}", optional=True)


def _g(x, digits=4):
    return "n/a" if x is None else f"{x:.{digits}g}"


def from_sweep(summary, lr=None):
    """Lines on what a finished sweep measured: each optimizer's best cell and edge slope,
    and at ``lr`` (the nearest swept row) the row's best weight decay and edge. ValueError
    when ``summary`` is not a sweep's summary.json, or ``lr`` is not a finite number > 0."""
    check_summary(summary)
    if lr is not None:
        _number(lr, "lr", positive=True)
    split = summary.get("selection", "val")
    out = [f"measured on task {summary['task']!r} ({_shown(summary['metric'])} on the "
           f"{_shown(split) if isinstance(split, str) else 'val'} split, "
           f"{'higher' if summary['higher_is_better'] else 'lower'} is better; {summary['seeds']} seed(s)):"]
    for name, o in summary["optimizers"].items():
        name, best = _shown(name), o.get("best")
        if best is None:
            out.append(f"- {name}: every run diverged")
            continue
        verdict = f"; {_shown(o['verdict'])}" if o.get("verdict") else ""
        out.append(f"- {name}: best cell lr {best['lr']:.3g}, weight decay {best['weight_decay']:.3g} "
                   f"(val {_g(best.get('val'))}, test {_g(best.get('test'))}){verdict}")
        rows = o.get("rows") or []
        if lr is not None and rows:
            row = min(rows, key=lambda r: abs(math.log10(r["lr"]) - math.log10(lr)))
            edge = f"{row['edge_wd']:.3g}" if row.get("edge_wd") is not None else "none in range"
            wd = f"{row['best_wd']:.3g}" if row.get("best_wd") is not None else "none (every run diverged)"
            out.append(f"  at lr {row['lr']:.3g} (the swept row nearest {lr:g}): best weight decay {wd}, "
                       f"too-much-decay edge {edge}")
    return out
