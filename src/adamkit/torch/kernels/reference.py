"""The readable per-tensor loop: each tensor goes through :mod:`adamkit.rules`.

Half-precision params and states are updated in float32 and rounded once on
store, so this path is at least as accurate as torch.optim's for-loop. It takes
any layout, any device, sparse SGD gradients, and lets autograd flow through the
step (``differentiable=True``).
"""

import torch

from adamkit import rules
from adamkit.torch.kernels import rounding as rnd


def _opmath(t):
    """The value to compute with: fp32 for half tensors. Under autograd (``differentiable=True``)
    a copy, since the tensor is overwritten in place after the math has read it."""
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.float()
    return t.clone() if torch.is_grad_enabled() and t.layout == torch.strided else t


def _value(step):
    # A CPU step is read as a Python number (as torch's for-loop does); a device
    # step stays a tensor so the math never syncs with the host.
    return step.item() if step.device.type == "cpu" else step


def _param(p, i, rounding):
    """The param's value for the math, and how to write the result back."""
    if rounding is None or not rnd.applies(rounding.mode, p.dtype):
        return _opmath(p), lambda new: p.copy_(new)
    comp = rounding.comps[i] if rounding.mode == "kahan" else None
    return rnd.read(p, comp), lambda new: rnd.write(p, new, rounding.mode, comp, rounding.key(i))


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, rounding=None):
    for i, p in enumerate(params):
        vmax = _opmath(max_exp_avg_sqs[i]) if h.amsgrad else None
        value, store = _param(p, i, rounding)
        new_p, m, v, vmax = rules.adam(
            value, _opmath(grads[i]), _opmath(exp_avgs[i]), _opmath(exp_avg_sqs[i]), vmax,
            step=_value(steps[i]), lr=h.lr, beta1=h.beta1, beta2=h.beta2, eps=h.eps, l2=h.l2, l1=h.l1,
            shrink=h.shrink, amsgrad=h.amsgrad, maximize=h.maximize)
        store(new_p)
        exp_avgs[i].copy_(m)
        exp_avg_sqs[i].copy_(v)
        if h.amsgrad:
            max_exp_avg_sqs[i].copy_(vmax)


def sgd(params, grads, momentum_buffers, h, rounding=None):
    """Returns the momentum buffers (new tensors where a buffer was None)."""
    out = []
    for i, (p, g, buf) in enumerate(zip(params, grads, momentum_buffers)):
        value, store = _param(p, i, rounding)
        new_p, new_buf = rules.sgd(value, _opmath(g), None if buf is None else _opmath(buf), lr=h.lr,
                                   momentum=h.momentum, dampening=h.dampening, nesterov=h.nesterov,
                                   l2=h.l2, l1=h.l1, shrink=h.shrink, maximize=h.maximize)
        store(new_p)
        if h.momentum != 0:
            if buf is None or buf.is_sparse or new_buf.is_sparse:  # a new buffer (a sparse one each step)
                buf = new_buf.to(p.dtype, copy=True)
            else:
                buf.copy_(new_buf)
        out.append(buf)
    return out
