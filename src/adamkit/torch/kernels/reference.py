"""The readable per-tensor loop: each tensor goes through :mod:`adamkit.rules`.

Half-precision params and states are updated in float32 and rounded once on
store, so this path is at least as accurate as torch.optim's for-loop.
"""

import torch

from adamkit import rules


def _opmath(t):
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _value(step):
    # A CPU step is read as a Python number (as torch's for-loop does); a device
    # step stays a tensor so the math never syncs with the host.
    return step.item() if step.device.type == "cpu" else step


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2,
         eps, l2, l1, shrink, amsgrad, maximize):
    for i, p in enumerate(params):
        steps[i] += 1
        vmax = _opmath(max_exp_avg_sqs[i]) if amsgrad else None
        # The decay mode arrives reduced; rules.adam sees it as "l2" + "l1" + a shrink.
        g = rules.decayed_gradient(_opmath(p), _opmath(grads[i]), l2=l2, l1=l1, maximize=maximize)
        new_p, m, v, vmax = rules.adam(
            _opmath(p) * shrink, g, _opmath(exp_avgs[i]), _opmath(exp_avg_sqs[i]), vmax,
            step=_value(steps[i]), lr=lr, beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad)
        p.copy_(new_p)
        exp_avgs[i].copy_(m)
        exp_avg_sqs[i].copy_(v)
        if amsgrad:
            max_exp_avg_sqs[i].copy_(vmax)


def sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, nesterov, l2, l1, shrink,
        maximize):
    """Returns the momentum buffers (new tensors where a buffer was None)."""
    out = []
    for p, g, buf in zip(params, grads, momentum_buffers):
        d = rules.decayed_gradient(_opmath(p), _opmath(g), l2=l2, l1=l1, maximize=maximize)
        new_p, new_buf = rules.sgd(_opmath(p) * shrink, d, None if buf is None else _opmath(buf),
                                   lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
        p.copy_(new_p)
        if momentum != 0:
            if buf is None:
                buf = torch.empty_like(p)
            buf.copy_(new_buf)
        out.append(buf)
    return out
