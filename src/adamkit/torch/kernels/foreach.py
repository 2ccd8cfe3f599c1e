"""Multi-tensor step with torch's ``_foreach_*`` ops: a few launches per (device, dtype) bucket.

The arithmetic follows torch.optim's foreach Adam/SGD, with the decay mode as
``(l2, l1, shrink)``. Math runs in the params' dtype, like torch's, except where half-precision
params round by ``"kahan"`` or ``"stochastic"`` (:mod:`.rounding`): those buckets compute on
fp32 copies, store the states to nearest and the params by their rounding.
"""

import torch
from torch.optim import Optimizer

from adamkit.torch.kernels import rounding as rnd


def _buckets(*tensor_lists):
    """``(lists, indices)`` per (device, dtype) of the first list, as torch's foreach paths group them."""
    return list(Optimizer._group_tensors_by_device_and_dtype(list(tensor_lists), with_indices=True).values())


def _decayed_grads(params, grads, l2, l1, maximize):
    if maximize:
        grads = torch._foreach_neg(grads)
    if l2 != 0:
        grads = torch._foreach_add(grads, params, alpha=l2)
    if l1 != 0:
        grads = torch._foreach_add(grads, torch._foreach_sign(params), alpha=l1)
    return grads


def _rounds(rounding, params):
    """Whether this bucket's params round other than to nearest (then its math runs in fp32)."""
    return rounding is not None and rnd.applies(rounding.mode, params[0].dtype)


def _widen(params, idx, rounding):
    """fp32 values to compute with (Kahan: plus the compensation) and a function storing them back."""
    comps = [rounding.comps[i] if rounding.mode == "kahan" else None for i in idx]
    wide = [rnd.read(p, c) for p, c in zip(params, comps)]

    def store():
        for p, new, i, c in zip(params, wide, idx, comps):
            rnd.write(p, new, rounding.mode, c, rounding.key(i))

    return wide, store


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, rounding=None):
    lists = [params, grads, exp_avgs, exp_avg_sqs, steps] + ([max_exp_avg_sqs] if h.amsgrad else [])
    for (p, g, m, v, s, *vmax), idx in _buckets(*lists):
        if not _rounds(rounding, p):
            _adam(p, g, m, v, vmax[0] if vmax else None, s, h)
            continue
        wide_p, store = _widen(p, idx, rounding)
        states = [m, v] + vmax
        wide_states = [[t.float() for t in ts] for ts in states]
        _adam(wide_p, [t.float() for t in g], *wide_states[:2], wide_states[2] if vmax else None, s, h)
        for ts, wide in zip(states, wide_states):
            torch._foreach_copy_(ts, wide)
        store()


def _adam(p, g, m, v, vmax, s, h):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    g = _decayed_grads(p, g, l2, l1, maximize)
    if shrink != 1:
        torch._foreach_mul_(p, shrink)
    torch._foreach_lerp_(m, g, 1 - beta1)
    torch._foreach_mul_(v, beta2)
    torch._foreach_addcmul_(v, g, g, 1 - beta2)
    del g
    if amsgrad:
        torch._foreach_maximum_(vmax, v)
    t = [step.item() for step in s]  # bias corrections are host scalars, as in torch's foreach
    denom = torch._foreach_sqrt(vmax if amsgrad else v)
    torch._foreach_div_(denom, [(1 - beta2**k) ** 0.5 for k in t])
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(p, m, denom, [-lr / (1 - beta1**k) for k in t])


def sgd(params, grads, momentum_buffers, h, rounding=None):
    """Returns the momentum buffers (new tensors where a buffer was None)."""
    out = list(momentum_buffers)
    for (p, g), idx in _buckets(params, grads):
        bufs = [out[i] for i in idx]
        if not _rounds(rounding, p):
            for i, b in zip(idx, _sgd(p, g, bufs, h)):
                out[i] = b
            continue
        wide_p, store = _widen(p, idx, rounding)
        wide_bufs = _sgd(wide_p, [t.float() for t in g], [None if b is None else b.float() for b in bufs], h)
        if h.momentum != 0:
            for i, b, new in zip(idx, bufs, wide_bufs):
                out[i] = new.to(p[0].dtype) if b is None else b.copy_(new)
        store()
    return out


def _sgd(p, g, bufs, h):
    """One SGD step on a bucket; the momentum buffers, updated in place or new where they were None."""
    lr, momentum, dampening, nesterov, l2, l1, shrink, maximize = h
    g = _decayed_grads(p, g, l2, l1, maximize)
    if shrink != 1:
        torch._foreach_mul_(p, shrink)
    bufs = list(bufs)
    if momentum != 0:
        if all(b is not None for b in bufs):
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, g, alpha=1 - dampening)
        else:
            for j, b in enumerate(bufs):
                if b is None:
                    bufs[j] = g[j].detach().clone()
                else:
                    b.mul_(momentum).add_(g[j], alpha=1 - dampening)
        g = torch._foreach_add(g, bufs, alpha=momentum) if nesterov else bufs
    torch._foreach_add_(p, g, alpha=-lr)
    return bufs
