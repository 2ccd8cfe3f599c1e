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
    "corrected"    p <- p * (1 - lr*eta*wd)  before the step (AdamC, Defazio 2025:
                                             torch's form with wd following the
                                             schedule, wd_t = wd * lr_t / lr_max)

For one fixed base rate lr0, "independent" with ``wd`` equals "decoupled" with
``wd / lr0``; across a sweep of lr0 at fixed ``wd`` they differ.
"""

import math
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
    DecayMode("corrected", "p <- p*(1 - lr*eta*wd), eta = lr/lr_ref (AdamC, Defazio 2025)", True,
              lambda wd, lr, eta: DecayTerms(shrink=1 - lr * eta * wd), reads_eta=True),
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


def stable_adamw(p, g, m, v, *, step, lr, beta1=0.9, beta2=0.99, eps=1e-6, l2=0.0, l1=0.0, shrink=1.0,
                 maximize=False, xp=None):
    r"""One StableAdamW step (Wortsman et al. 2023, "Stable and low-precision training for
    large-scale vision-language models", Algorithm 2), as ``optimi.StableAdamW`` computes it.

    AdamW whose rate is clipped per tensor by the RMS of ``g^2 / v_hat`` (Adafactor's update
    clipping):

    .. math::
        g &= g + l_2 p + l_1 \operatorname{sign}(p) \\
        m &= \beta_1 m + (1 - \beta_1) g, \qquad v = \beta_2 v + (1 - \beta_2) g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        c &= \max\Bigl(1, \sqrt{\operatorname{mean}\bigl(g^2 / \max(\hat v, \epsilon^2)\bigr)}\Bigr) \\
        p &= \bigl(1 - (1 - s) / c\bigr) \, p \\
        p &= p - \frac{\text{lr}}{c} \cdot \frac{\hat m}{\sqrt{\hat v} + \epsilon}

    The decay factor ``s`` (``shrink``, from :func:`decay_terms`) uses the clipped rate too:
    ``"decoupled"`` gives ``p *= 1 - (lr/c)*wd`` (optimi's default), ``"independent"``
    ``p *= 1 - (eta/c)*wd`` (optimi's ``decouple_lr=True`` with ``max_lr = reference_lr``).
    optimi keeps ``m_hat``, ``v_hat`` themselves (debiased betas); this rule keeps torch's
    ``m``, ``v``, equal after the bias corrections above. ``mean`` over an empty tensor is 0.

    Returns ``(p, m, v)``.

    >>> import numpy as np
    >>> p, m, v = stable_adamw(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(p, 6).tolist()
    [0.9, 0.9]
    """
    xp = xp or namespace(p)
    g = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    bias1 = 1 - beta1**step
    v_hat = v / (1 - beta2**step)
    ratio = g * g / _at_least(v_hat, eps * eps, xp)
    clip = _at_least(xp.sqrt(ratio.sum() / max(_size(ratio), 1)), 1.0, xp)
    if not _is_one(shrink):
        p = p * (1 - (1 - shrink) / clip)
    return p - (lr / clip) * (m / bias1) / (xp.sqrt(v_hat) + eps), m, v


def ademamix_schedules(step, *, alpha, beta1, beta3, t_alpha=None, t_beta3=None, xp=None):
    r"""AdEMAMix's warm-ups at step ``t``: ``(alpha_t, beta3_t)`` (Pagliardini et al. 2024, Sec. 3).

    .. math::
        \alpha_t &= \min(t \alpha / T_\alpha, \alpha) \\
        \beta_{3,t} &= \min\Bigl(\exp\Bigl(\frac{\ln\beta_1 \ln\beta_3}
                        {(1 - t/T_{\beta_3}) \ln\beta_3 + (t/T_{\beta_3}) \ln\beta_1}\Bigr), \beta_3\Bigr)

    ``t_alpha=None`` (or ``t_beta3=None``) leaves that value constant (bitsandbytes' convention:
    two separate horizons; pytorch_optimizer's ``t_alpha_beta3`` is both set alike). ``beta3_t``
    starts at ``beta1`` and grows so that the half-life of the slow EMA grows linearly.

    >>> ademamix_schedules(50, alpha=5.0, beta1=0.9, beta3=0.9999, t_alpha=100)
    (2.5, 0.9999)
    """
    if t_alpha is not None:
        alpha = alpha * _at_most(step / t_alpha, 1.0, xp)
    if t_beta3 is not None:
        scale = step / t_beta3
        ln1, ln3 = math.log(beta1), math.log(beta3)
        exponent = ln1 * ln3 / ((1 - scale) * ln3 + scale * ln1)
        beta3 = _at_most(math.exp(exponent) if isinstance(exponent, (int, float)) else
                         (xp or namespace(exponent)).exp(exponent), beta3, xp)
    return alpha, beta3


def ademamix(p, g, m, v, m_slow, *, step, lr, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0, t_alpha=None,
             t_beta3=None, eps=1e-8, l2=0.0, l1=0.0, shrink=1.0, maximize=False, xp=None):
    r"""One AdEMAMix step (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better,
    Faster, Older", Algorithm 1), as bitsandbytes' ``AdEMAMix`` and pytorch_optimizer's compute it.

    Adam whose numerator adds a slow EMA of the gradient, weighted by ``alpha``:

    .. math::
        g &= g + l_2 p + l_1 \operatorname{sign}(p), \qquad p = s \cdot p \\
        \alpha_t, \beta_{3,t} &= \text{warm-ups of } \alpha, \beta_3 \ \text{(see :func:`ademamix_schedules`)} \\
        m_1 &= \beta_1 m_1 + (1 - \beta_1) g \qquad \text{(fast, bias-corrected)} \\
        m_2 &= \beta_{3,t} m_2 + (1 - \beta_{3,t}) g \qquad \text{(slow, not bias-corrected)} \\
        v &= \beta_2 v + (1 - \beta_2) g^2 \\
        p &= p - \text{lr} \cdot \frac{m_1 / (1 - \beta_1^t) + \alpha_t m_2}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}

    ``(l2, l1, shrink)`` is the weight-decay mode reduced by :func:`decay_terms`; the paper's
    decay is ``"decoupled"`` (``p *= 1 - lr*wd``).

    Returns ``(p, m, v, m_slow)``.
    """
    xp = xp or namespace(p)
    g = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    if not _is_one(shrink):
        p = p * shrink
    alpha_t, beta3_t = ademamix_schedules(step, alpha=alpha, beta1=beta1, beta3=beta3, t_alpha=t_alpha,
                                          t_beta3=t_beta3, xp=xp)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_slow = beta3_t * m_slow + (1 - beta3_t) * g
    denom = xp.sqrt(v) / (1 - beta2**step) ** 0.5 + eps
    return p - lr * (m / (1 - beta1**step) + alpha_t * m_slow) / denom, m, v, m_slow


def _is_zero(x):
    return isinstance(x, (int, float)) and x == 0


def _is_one(x):
    """True only for a plain number equal to 1 (a traced or tensor shrink is always applied)."""
    return isinstance(x, (int, float)) and x == 1


def _size(x):
    return x.numel() if callable(getattr(x, "numel", None)) else x.size


def _at_least(x, floor, xp):
    """``max(x, floor)`` elementwise, ``floor`` a number: for tensors (autograd included) and arrays."""
    return x.clamp(min=floor) if xp is not numpy and hasattr(x, "clamp") else numpy.maximum(x, floor)


def _at_most(x, cap, xp=None):
    """``min(x, cap)`` for plain numbers (a Python number back), tensors and arrays, without branching on a tensor."""
    if isinstance(x, (int, float)):
        return min(x, cap)
    return x.clamp(max=cap) if hasattr(x, "clamp") else numpy.minimum(x, cap)


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


class StableAdamWScalars(NamedTuple):
    """:func:`stable_adamw`'s keyword arguments but ``step``, computed once per step."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    l2: float
    l1: float
    shrink: float
    maximize: bool


class AdEMAMixScalars(NamedTuple):
    """:func:`ademamix`'s keyword arguments but ``step``, computed once per step."""

    lr: float
    beta1: float
    beta2: float
    beta3: float
    alpha: float
    t_alpha: float | None
    t_beta3: float | None
    eps: float
    l2: float
    l1: float
    shrink: float
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
    Algorithm("stable_adamw", stable_adamw, (Slot("exp_avg"), Slot("exp_avg_sq")), StableAdamWScalars,
              counts_steps=True),
    Algorithm("ademamix", ademamix, (Slot("exp_avg"), Slot("exp_avg_sq"), Slot("exp_avg_slow")), AdEMAMixScalars,
              counts_steps=True),
)}
