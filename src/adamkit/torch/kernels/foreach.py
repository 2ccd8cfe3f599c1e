"""Multi-tensor step with torch's ``_foreach_*`` ops: a few launches per (device, dtype) bucket.

The arithmetic follows torch.optim's foreach Adam/SGD, with the decay mode as
``(l2, l1, shrink)``. Math runs in the params' dtype, like torch's.
"""

import torch
from torch.optim import Optimizer


def _buckets(*tensor_lists):
    """Index lists of tensors grouped by (device, dtype), as torch's foreach paths do."""
    grouped = Optimizer._group_tensors_by_device_and_dtype(list(tensor_lists))
    return [lists for lists, _ in grouped.values()]


def _decayed_grads(params, grads, l2, l1, maximize):
    if maximize:
        grads = torch._foreach_neg(grads)
    if l2 != 0:
        grads = torch._foreach_add(grads, params, alpha=l2)
    if l1 != 0:
        grads = torch._foreach_add(grads, torch._foreach_sign(params), alpha=l1)
    return grads


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    lists = [params, grads, exp_avgs, exp_avg_sqs, steps] + ([max_exp_avg_sqs] if amsgrad else [])
    for p, g, m, v, s, *vmax in _buckets(*lists):
        g = _decayed_grads(p, g, l2, l1, maximize)
        if shrink != 1:
            torch._foreach_mul_(p, shrink)
        torch._foreach_lerp_(m, g, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, 1 - beta2)
        del g
        if amsgrad:
            torch._foreach_maximum_(vmax[0], v)
        t = [step.item() for step in s]  # bias corrections are host scalars, as in torch's foreach
        denom = torch._foreach_sqrt(vmax[0] if amsgrad else v)
        torch._foreach_div_(denom, [(1 - beta2**k) ** 0.5 for k in t])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(p, m, denom, [-lr / (1 - beta1**k) for k in t])


def sgd(params, grads, momentum_buffers, h):
    lr, momentum, dampening, nesterov, l2, l1, shrink, maximize = h
    out = list(momentum_buffers)
    index = {id(p): i for i, p in enumerate(params)}
    for p, g in _buckets(params, grads):
        g = _decayed_grads(p, g, l2, l1, maximize)
        if shrink != 1:
            torch._foreach_mul_(p, shrink)
        if momentum != 0:
            bufs = [out[index[id(t)]] for t in p]
            if all(b is not None for b in bufs):
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, g, alpha=1 - dampening)
            else:
                for j, b in enumerate(bufs):
                    if b is None:
                        bufs[j] = out[index[id(p[j])]] = g[j].detach().clone()
                    else:
                        b.mul_(momentum).add_(g[j], alpha=1 - dampening)
            g = torch._foreach_add(g, bufs, alpha=momentum) if nesterov else bufs
        torch._foreach_add_(p, g, alpha=-lr)
    return out
