"""Hyperparameter validation shared by every backend.

Each check raises ``ValueError`` naming the parameter, its value and the allowed
range, the way torch.optim does, so a bad value never reaches a parameter.
"""

import math

DECAY_MODES = ("l2", "l1", "decoupled", "independent")


def _scalar(value):
    """A Python float for numbers and one-element tensors/arrays (no host sync for floats)."""
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "numel") and value.numel() != 1:
        raise ValueError(f"Tensor hyperparameters must be 1-element, got shape {tuple(value.shape)}")
    return float(value)


def check_lr(lr, name="lr"):
    v = _scalar(lr)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid learning rate: {name}={lr!r}; expected a finite number >= 0")


def check_betas(betas, name="betas"):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid {name}={betas!r}; expected a pair (beta1, beta2)")
    for i, b in enumerate(betas):
        if not 0.0 <= _scalar(b) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {name}[{i}]={b!r}; expected 0 <= beta < 1")


def check_beta(beta, name):
    if not 0.0 <= _scalar(beta) < 1.0:
        raise ValueError(f"Invalid {name}={beta!r}; expected 0 <= {name} < 1")


def check_eps(eps, name="eps"):
    v = _scalar(eps)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid epsilon value: {name}={eps!r}; expected a finite number > 0")


def check_nonnegative(value, name):
    v = _scalar(value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid {name} value: {name}={value!r}; expected a finite number >= 0")


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"Invalid {name}={value!r}; expected one of {', '.join(map(repr, allowed))}")


def check_decay(decay):
    check_choice(decay, "decay", DECAY_MODES)


def check_sgd(momentum, dampening, nesterov):
    check_nonnegative(momentum, "momentum")
    check_nonnegative(dampening, "dampening")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"Nesterov momentum requires a momentum and zero dampening: "
            f"nesterov=True, momentum={momentum!r}, dampening={dampening!r}"
        )
