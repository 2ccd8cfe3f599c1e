"""Hyperparameter validation shared by every backend.

Each check raises ``ValueError`` naming the parameter, its value and the allowed
range (``TypeError`` for a value that is not a number, such as the string ``"1e-3"`` a
config file gives), the way torch.optim does, so a bad value never reaches a parameter.
"""

import math
import numbers


def _scalar(value, name="value"):
    """A Python float for numbers and one-element tensors/arrays (no host sync for floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) and not hasattr(value, "shape"):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "numel") and value.numel() != 1:
        raise ValueError(f"Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
    return float(value.detach() if hasattr(value, "detach") else value)  # a hyperparameter autograd may track


def check_lr(lr, name="lr"):
    v = _scalar(lr, name)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid learning rate: {lr} ({name} must be a finite number >= 0)")


def check_betas(betas, name="betas"):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid {name}={betas!r}; expected a pair (beta1, beta2)")
    for i, b in enumerate(betas):
        if not 0.0 <= _scalar(b, f"{name}[{i}]") < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b} ({name}[{i}] must be in [0, 1))")


def check_beta(beta, name):
    if not 0.0 <= _scalar(beta, name) < 1.0:
        raise ValueError(f"Invalid {name} value: {beta} ({name} must be in [0, 1))")


def check_eps(eps, name="eps"):
    v = _scalar(eps, name)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid epsilon value: {eps} ({name} must be a finite number >= 0)")


def check_nonnegative(value, name):
    v = _scalar(value, name)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid {name} value: {value} ({name} must be a finite number >= 0)")


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"Invalid {name}={value!r}; expected one of {', '.join(map(repr, allowed))}")


def check_sgd(momentum, dampening, nesterov):
    check_nonnegative(momentum, "momentum")
    check_nonnegative(dampening, "dampening")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"Nesterov momentum requires a momentum and zero dampening: "
            f"nesterov=True, momentum={momentum!r}, dampening={dampening!r}"
        )
