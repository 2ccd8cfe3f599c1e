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

import numpy

from adamkit._checks import check_decay

DECOUPLED = ("decoupled", "independent")


def namespace(x):
    """The array module that operates on ``x``: ``torch`` for tensors, else NumPy."""
    if type(x).__module__.partition(".")[0] == "torch":
        import torch

        return torch
    return numpy


def decay_terms(decay, weight_decay, lr, eta=1.0):
    """Reduce a weight-decay mode to three scalars ``(l2, l1, shrink)``.

    The gradient becomes ``g + l2 * p + l1 * sign(p)`` and the parameter is
    multiplied by ``shrink`` before the step. Exactly one of them differs from
    its neutral value (0, 0, 1), so kernels never re-derive the mode.
    """
    check_decay(decay)
    if decay == "l2":
        return weight_decay, 0.0, 1.0
    if decay == "l1":
        return 0.0, weight_decay, 1.0
    if decay == "decoupled":
        return 0.0, 0.0, 1 - lr * weight_decay
    return 0.0, 0.0, 1 - eta * weight_decay


def decayed_gradient(p, g, *, l2, l1, maximize=False, xp=None):
    """The gradient the moments see: ``(-g if maximize else g) + l2*p + l1*sign(p)``."""
    xp = xp or namespace(p)
    if maximize:
        g = -g
    if l2 != 0:
        g = g + l2 * p
    if l1 != 0:
        g = g + l1 * xp.sign(p)
    return g


def sgd(p, g, buf=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
        weight_decay=0.0, decay="l2", eta=1.0, maximize=False, xp=None):
    r"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        d &= g + \text{decay}(p) \\
        b &= d \ \text{(first step)}, \quad b = \mu b + (1 - \tau) d \ \text{(later)} \\
        d &= d + \mu b \ \text{(Nesterov)} \quad\text{or}\quad d = b \\
        p &= s \cdot p - \text{lr} \cdot d

    where ``s`` is the decoupled shrink factor (1 for coupled modes).
    ``momentum=0`` is plain gradient descent and returns ``buf=None``.

    Returns ``(p, buf)``.
    """
    xp = xp or namespace(p)
    l2, l1, shrink = decay_terms(decay, weight_decay, lr, eta)
    d = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    if decay in DECOUPLED and weight_decay != 0:
        p = p * shrink
    if momentum != 0:
        buf = d if buf is None else momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam(p, g, m, v, vmax=None, *, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
         weight_decay=0.0, decay="l2", eta=1.0, amsgrad=False, maximize=False, eps_hat=False, xp=None):
    r"""One Adam step (Kingma & Ba, Algorithm 1) with a weight-decay mode.

    .. math::
        g &= g + \text{coupled decay}(p), \qquad p = s \cdot p \\
        m &= \beta_1 m + (1 - \beta_1) g \\
        v &= \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(v_{max}, v) \ \text{(AMSGrad)} \quad\text{or}\quad v \\
        p &= p - \text{lr} \cdot \frac{m / (1 - \beta_1^t)}{\sqrt{\hat v / (1 - \beta_2^t)} + \epsilon}

    ``step`` is the 1-based index of this update. ``eps`` is added after the
    bias correction of ``v`` (PyTorch's placement); ``eps_hat=True`` adds it to the
    uncorrected ``sqrt(v)`` instead (Keras's and TensorFlow's "epsilon hat"), which is
    PyTorch's form with ``eps / sqrt(1 - beta2**t)``.

    Hyperparameters may be tensors (a scheduled ``lr``, a traced ``step``): the code
    branches only on the mode and on ``weight_decay``, never on a tensor's value.

    Returns ``(p, m, v, vmax)``; ``vmax`` is None unless ``amsgrad``.

    >>> import numpy as np
    >>> p, m, v, _ = adam(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(p, 6).tolist()
    [0.9, 0.9]
    """
    xp = xp or namespace(p)
    l2, l1, shrink = decay_terms(decay, weight_decay, lr, eta)
    g = decayed_gradient(p, g, l2=l2, l1=l1, maximize=maximize, xp=xp)
    if decay in DECOUPLED and weight_decay != 0:
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
