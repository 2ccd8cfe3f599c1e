"""The optimizers a study compares: one table, shared by every backend."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    name: str
    label: str
    family: str  # "sgd" or "adam"
    lr: float
    weight_decay: float = 0.0
    decay: str = "l2"
    options: dict = field(default_factory=dict)
    rule: str = ""


_ADAM = ("m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;  "
         "p = p - lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)")

SPECS = {s.name: s for s in [
    Spec("gd", "GD", "sgd", 0.1, rule="p = p - lr * g"),
    Spec("momentum", "Momentum", "sgd", 0.02, options={"momentum": 0.9},
         rule="b = mu*b + g;  p = p - lr * b   (mu = 0.9)"),
    Spec("adam", "Adam", "adam", 0.05, rule=_ADAM),
    Spec("adam_l2", "Adam + L2", "adam", 0.05, 0.01, "l2", rule="g = g + wd*p;  then Adam"),
    Spec("adam_l1", "Adam + L1", "adam", 0.05, 0.01, "l1", rule="g = g + wd*sign(p);  then Adam"),
    Spec("adamw", "AdamW (decoupled)", "adam", 0.05, 0.01, "decoupled",
         rule="p = p * (1 - lr*wd);  then Adam   (torch.optim.AdamW)"),
    Spec("adamw_independent", "AdamW (independent)", "adam", 0.05, 5e-4, "independent",
         rule="p = p * (1 - eta*wd), eta = lr/lr0;  then Adam   (Loshchilov & Hutter)"),
]}


def with_overrides(spec, lr=None, weight_decay=None):
    """``spec`` with a new lr or weight decay (the decay only where the spec has a mode)."""
    changes = {}
    if lr is not None:
        changes["lr"] = lr
    if weight_decay is not None and spec.weight_decay:
        changes["weight_decay"] = weight_decay
    return Spec(**{**spec.__dict__, **changes})
