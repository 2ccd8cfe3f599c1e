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


def from_sweep(summary, lr=None):
    """Lines on what a finished sweep measured: each optimizer's best cell and edge slope,
    and at ``lr`` (the nearest swept row) the row's best weight decay and edge."""
    out = [f"measured on task {summary['task']!r} ({summary['metric']} on the val split, "
           f"{'higher' if summary['higher_is_better'] else 'lower'} is better; {summary['seeds']} seed(s)):"]
    for name, o in summary["optimizers"].items():
        best = o["best"]
        if best is None:
            out.append(f"- {name}: every run diverged")
            continue
        out.append(f"- {name}: best cell lr {best['lr']:.3g}, weight decay {best['weight_decay']:.3g} "
                   f"(val {best['val']:.4g}, test {best['test']:.4g}); {o['verdict']}")
        if lr is not None:
            rows = o["rows"]
            row = min(rows, key=lambda r: abs(math.log10(r["lr"]) - math.log10(lr)))
            edge = f"{row['edge_wd']:.3g}" if row["edge_wd"] is not None else "none in range"
            wd = f"{row['best_wd']:.3g}" if row["best_wd"] is not None else "none (every run diverged)"
            out.append(f"  at lr {row['lr']:.3g} (the swept row nearest {lr:g}): best weight decay {wd}, "
                       f"too-much-decay edge {edge}")
    return out
