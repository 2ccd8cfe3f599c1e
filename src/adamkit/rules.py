r"""The update rules, written once as pure functions of arrays.

Every function takes arrays (NumPy arrays, torch tensors, or anything whose
namespace offers ``sqrt``, ``sign`` and ``maximum``, such as ``keras.ops``) and
returns new arrays; nothing is modified in place. Every backend and every kernel
of adamkit is either a thin adapter over these functions or is tested against
them in float64.

Notation: parameter ``p``, gradient ``g``, moments ``m`` and ``v``, step ``t``
(1-based), scheduled learning rate ``lr`` (= lr_t), schedule multiplier ``eta``
(= lr_t / lr0), weight decay ``wd``.

Weight-decay modes (``decay=``)::

    "l2"           g <- g + wd * p           before the moments (coupled L2;
                                             torch.optim.Adam(weight_decay=))
    "l1"           g <- g + wd * sign(p)     before the moments (coupled L1)
    "decoupled"    p <- p * (1 - lr * wd)    before the step (torch.optim.AdamW,
                                             optax.adamw, keras AdamW)
    "independent"  p <- p * (1 - eta * wd)   before the step (Loshchilov & Hutter,
                                             Algorithm 2: decay follows the schedule
                                             but not the base learning rate)

For one fixed base rate lr0, "independent" with ``wd`` equals "decoupled" with
``wd / lr0``; across a sweep of lr0 at fixed ``wd`` they differ.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy

from adamkit._checks import check_choice
from adamkit.quant import STATE_FORMATS, Quantized, StateFormat, dequantize, quantize  # noqa: F401 (re-exported)


class DecayTerms(NamedTuple):
    """A decay mode reduced to scalars: ``g += l2*p + l1*sign(p)``, then ``p *= shrink``."""

    l2: float = 0.0
    l1: float = 0.0
    shrink: float = 1.0


@dataclass(frozen=True)
class DecayMode:
    name: str
    summary: str
    torch_decoupled: bool  # the value of torch.optim.Adam's ``decoupled_weight_decay`` flag
    reduce: Callable  # (weight_decay, lr, eta) -> DecayTerms
    reads_eta: bool = False  # follows the schedule multiplier eta = lr / reference_lr


# The one table of decay modes: validation, every backend, the CLI and the tests read it.
DECAY_MODES = {m.name: m for m in (
    DecayMode("l2", "g <- g + wd*p before the moments (coupled L2; torch.optim.Adam)", False,
              lambda wd, lr, eta: DecayTerms(l2=wd)),
    DecayMode("l1", "g <- g + wd*sign(p) before the moments (coupled L1)", False,
              lambda wd, lr, eta: DecayTerms(l1=wd)),
    DecayMode("decoupled", "p <- p*(1 - lr*wd) before the step (torch.optim.AdamW)", True,
              lambda wd, lr, eta: DecayTerms(shrink=1 - lr * wd)),
    DecayMode("independent", "p <- p*(1 - eta*wd), eta = lr/lr_ref (Loshchilov & Hutter)", True,
              lambda wd, lr, eta: DecayTerms(shrink=1 - eta * wd), reads_eta=True),
)}


def check_decay(decay, name="decay"):
    check_choice(decay, name, tuple(DECAY_MODES))


def namespace(x):
    """The array module that operates on ``x``: ``torch`` for tensors, else NumPy."""
    if type(x).__module__.partition(".")[0] == "torch":
        import torch

        return torch
    return numpy


def schedule_multiplier(lr, reference_lr):
    """``eta_t = lr_t / reference_lr``: how far a schedule has moved the rate, for ``"independent"`` decay.

    Every backend reads it this way. ``reference_lr`` is a number the user sees and may set;
    by default it is the rate the optimizer was constructed with (per param group), so:

    - constant rate, StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau
      and adamkit's schedules: eta starts at 1 and follows every reduction;
    - warmups (LinearLR, adamkit's ``warmup``) start below 1 and rise to it;
    - OneCycleLR and CyclicLR peak at their ``max_lr``: construct the optimizer with that rate,
      or set ``reference_lr`` to it, or eta exceeds 1.

    A multiplier above 1 makes the decay stronger than ``weight_decay`` says: every backend
    computes it as written and warns once (see :func:`decay_warning`); nothing clips it.
    """
    return lr / reference_lr if reference_lr else 1.0


class DecayWarning(NamedTuple):
    kind: str  # "factor" or "eta": each is said once per optimizer
    message: str


def decay_warning(decay, terms, *, lr, weight_decay, reference_lr=None, eta=1.0):
    """Why a step's decay deserves a warning (a :class:`DecayWarning`), or None.

    The one policy of every backend: each mode is computed as written, for any rate (as
    ``torch.optim.AdamW`` does for any ``lr*wd``); a factor ``shrink`` outside (0, 1] (weights
    flip sign or grow) or a schedule multiplier above 1
    is reported once, never clipped nor refused. Plain numbers only: traced values are not read.

    >>> decay_warning("decoupled", decay_terms("decoupled", 5.0, lr=1.0), lr=1.0, weight_decay=5.0).message
    'weight decay multiplies the weights by -4 (outside (0, 1]): decay=decoupled, lr=1, weight_decay=5'
    """
    shrink = terms.shrink
    if isinstance(shrink, (int, float)) and not 0.0 < shrink <= 1.0:
        where = f"decay={decay}, lr={lr:.4g}, weight_decay={weight_decay:.4g}"
        if DECAY_MODES[decay].reads_eta:
            where += f", reference_lr={reference_lr:.4g} (eta={eta:.4g})"
        return DecayWarning("factor",
                            f"weight decay multiplies the weights by {shrink:.4g} (outside (0, 1]): {where}")
    if DECAY_MODES[decay].reads_eta and isinstance(eta, (int, float)) and eta > 1 + 1e-6:
        return DecayWarning("eta", f"lr={lr:.4g} is above reference_lr={reference_lr:.4g}: {decay!r} decay is "
                                   f"{eta:.3g}x weight_decay; set reference_lr to the schedule's peak rate")
    return None


def decay_terms(decay, weight_decay, lr, eta=1.0):
    """Reduce a weight-decay mode to :class:`DecayTerms` ``(l2, l1, shrink)``.

    Exactly one of them differs from its neutral value (0, 0, 1), so kernels never
    re-derive the mode.

    >>> decay_terms("decoupled", 0.1, lr=0.01)
    DecayTerms(l2=0.0, l1=0.0, shrink=0.999)
    """
    check_decay(decay)
    return DECAY_MODES[decay].reduce(weight_decay, lr, eta)


def decayed_gradient(p, g, *, l2, l1, maximize=False, xp=None):
    """The gradient the moments see: ``(-g if maximize else g) + l2*p + l1*sign(p)``."""
    xp = xp or namespace(p)
    if maximize:
        g = -g
    if not _is_zero(l2):
        g = g + l2 * p
    if not _is_zero(l1):
        g = g + l1 * xp.sign(p)
    return g


def sgd(p, g, buf=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
        l2=0.0, l1=0.0, shrink=1.0, maximize=False, xp=None):
    r"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        d &= g + l_2 p + l_1 \operatorname{sign}(p), \qquad p = s \cdot p \\
        b &= d \ \text{(first step)}, \quad b = \mu b + (1 - \tau) d \ \text{(later)} \\
        d &= d + \mu b \ \text{(Nesterov)} \quad\text{or}\quad d = b \\
        p &= p - \text{lr} \cdot d

    ``(l2, l1, shrink)`` is the weight-decay mode reduced by :func:`decay_terms`.
    ``momentum=0`` is plain gradient descent and returns ``buf=None``.

    Returns ``(p, buf)``.
    """
    xp = xp or namespace(p)
    d = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    if not _is_one(shrink):
        p = p * shrink
    if momentum != 0:
        buf = d if buf is None else momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam(p, g, m, v, vmax=None, *, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
         l2=0.0, l1=0.0, shrink=1.0, amsgrad=False, maximize=False, eps_hat=False, xp=None):
    r"""One Adam step (Kingma & Ba, Algorithm 1) with a weight-decay mode.

    .. math::
        g &= g + l_2 p + l_1 \operatorname{sign}(p), \qquad p = s \cdot p \\
        m &= \beta_1 m + (1 - \beta_1) g \\
        v &= \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(v_{max}, v) \ \text{(AMSGrad)} \quad\text{or}\quad v \\
        p &= p - \text{lr} \cdot \frac{m / (1 - \beta_1^t)}{\sqrt{\hat v / (1 - \beta_2^t)} + \epsilon}

    ``(l2, l1, shrink)`` is the weight-decay mode reduced by :func:`decay_terms`.
    ``step`` is the 1-based index of this update. ``eps`` is added after the
    bias correction of ``v`` (PyTorch's placement); ``eps_hat=True`` adds it to the
    uncorrected ``sqrt(v)`` instead (Keras's and TensorFlow's "epsilon hat"), which is
    PyTorch's form with ``eps / sqrt(1 - beta2**t)``.

    Hyperparameters may be tensors (a scheduled ``lr``, a traced ``step``): the code
    never branches on a tensor's value.

    Returns ``(p, m, v, vmax)``; ``vmax`` is None unless ``amsgrad``.

    >>> import numpy as np
    >>> p, m, v, _ = adam(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(p, 6).tolist()
    [0.9, 0.9]
    """
    xp = xp or namespace(p)
    g = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    if not _is_one(shrink):
        p = p * shrink
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    if amsgrad:
        vmax = v if vmax is None else xp.maximum(vmax, v)
    bias1 = 1 - beta1**step
    bias2 = 1 - beta2**step
    root = xp.sqrt(vmax if amsgrad else v)
    denom = (root + eps) / bias2**0.5 if eps_hat else root / bias2**0.5 + eps
    return p - lr * (m / bias1) / denom, m, v, vmax


def _is_zero(x):
    return isinstance(x, (int, float)) and x == 0


def _is_one(x):
    """True only for a plain number equal to 1 (a traced or tensor shrink is always applied)."""
    return isinstance(x, (int, float)) and x == 1


# Algorithms as records: each rule above, the state it keeps and the scalars it reads. Every
# backend and kernel is driven from these; the reference kernel is derived from them alone.


class SGDScalars(NamedTuple):
    """:func:`sgd`'s keyword arguments, computed once per step by the optimizer."""

    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    l2: float
    l1: float
    shrink: float
    maximize: bool


class AdamScalars(NamedTuple):
    """:func:`adam`'s keyword arguments but ``step`` (per tensor), computed once per step."""

    lr: float  # a float, or a one-element tensor for kernels that read it on the device
    beta1: float
    beta2: float
    eps: float
    l2: float
    l1: float
    shrink: float  # like lr: a float or a device tensor
    amsgrad: bool
    maximize: bool


@dataclass(frozen=True)
class Slot:
    """One state tensor per parameter, under torch.optim's name for it."""

    name: str
    kept: Callable = lambda h: True  # (scalars) -> whether this configuration keeps it
    lazy: bool = False  # the rule creates it on its first step (None before), instead of zeros
    formats: tuple = ("param", "float")  # storage it may take: the param's dtype, another float dtype,
    #                                      "quantized" (a format of adamkit.quant.STATE_FORMATS)
    signed: bool = True  # its values take either sign (the quantized formats' signed map; else unsigned)


@dataclass(frozen=True)
class Algorithm:
    """An update rule, its state and its scalars: what a kernel, a backend or a test needs to know.

    The rule takes ``(p, g, *slots)`` (plus ``step=`` if it counts steps) and the scalars as
    keywords, and returns ``(p, *slots)``.
    """

    name: str
    rule: Callable
    slots: tuple
    scalars: type
    counts_steps: bool

    def kept(self, h):
        """The slots this configuration keeps, in the rule's order."""
        return tuple(s for s in self.slots if s.kept(h))


_ANY = ("param", "float", "quantized")
ALGORITHMS = {a.name: a for a in (
    Algorithm("sgd", sgd, (Slot("momentum_buffer", lambda h: h.momentum != 0, lazy=True, formats=("param",)),),
              SGDScalars, counts_steps=False),
    Algorithm("adam", adam, (Slot("exp_avg", formats=_ANY), Slot("exp_avg_sq", formats=_ANY, signed=False),
                             Slot("max_exp_avg_sq", lambda h: h.amsgrad, formats=_ANY, signed=False)),
              AdamScalars, counts_steps=True),
)}
