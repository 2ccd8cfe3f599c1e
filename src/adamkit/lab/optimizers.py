"""The optimizers the lab compares: one table, built from adamkit's own optimizers.

Each entry names an adamkit optimizer class, its default weight-decay mode (``None``:
no decay unless asked for) and the update rule in words for the reports.
"""

from dataclasses import dataclass, field

from adamkit import rules

_ADAM = ("m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;  "
         "p = p - lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)")


@dataclass(frozen=True)
class Optimizer:
    name: str
    label: str
    family: str            # "sgd", "momentum" or "adam": picks the task's default lr
    mode: str | None       # default decay mode; None: no decay by default
    algorithm: str         # its record in adamkit.rules.ALGORITHMS
    options: dict = field(default_factory=dict)
    rule: str = ""


OPTIMIZERS = {o.name: o for o in [
    Optimizer("sgd", "SGD", "sgd", None, "sgd", rule="p = p - lr * g"),
    Optimizer("momentum", "Momentum", "momentum", None, "sgd", {"momentum": 0.9},
              rule="b = mu*b + g;  p = p - lr * b   (mu = 0.9)"),
    Optimizer("adam", "Adam", "adam", None, "adam", rule=_ADAM),
    Optimizer("adam-l2", "Adam + L2", "adam", "l2", "adam", rule="g = g + wd*p;  then Adam"),
    Optimizer("adam-l1", "Adam + L1", "adam", "l1", "adam", rule="g = g + wd*sign(p);  then Adam"),
    Optimizer("adamw", "AdamW (decoupled)", "adam", "decoupled", "adam",
              rule="p = p * (1 - lr*wd);  then Adam   (torch.optim.AdamW)"),
    Optimizer("adamw-independent", "AdamW (independent)", "adam", "independent", "adam",
              rule="p = p * (1 - eta*wd), eta = lr/lr0;  then Adam   (Loshchilov & Hutter)"),
    Optimizer("adamw-corrected", "AdamW (corrected)", "adam", "corrected", "adam",
              rule="p = p * (1 - lr*eta*wd), eta = lr/lr0;  then Adam   (AdamC, Defazio)"),
]}

DECAY_MODES = tuple(rules.DECAY_MODES)


def build(name, groups, lr, decay, **options):
    """An adamkit.torch optimizer for ``OPTIMIZERS[name]`` over ``groups`` (param groups
    carrying their own ``weight_decay``), with decay mode ``decay``; ``options`` (e.g.
    ``rounding=``) go to its constructor."""
    import adamkit.torch as ak

    spec = OPTIMIZERS[name]
    decay = decay or "l2"  # the mode is moot when every group's weight decay is 0
    classes = {"sgd": ak.SGD, "adam": ak.AdamW if rules.DECAY_MODES[decay].torch_decoupled else ak.Adam}
    return classes[spec.algorithm](groups, lr=lr, decay=decay, **spec.options, **options)
