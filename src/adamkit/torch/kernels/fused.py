"""torch's fused Adam/AdamW kernels, driven for every decay mode.

- ``l2``: ``torch._fused_adam_`` with ``weight_decay = l2`` (coupled, exactly torch.optim.Adam).
- ``decoupled`` and ``independent``: ``torch._fused_adamw_`` with ``weight_decay = (1 - shrink) / lr``,
  so its ``p *= 1 - lr * weight_decay`` is the mode's shrink.
- ``l1``: float32 and bfloat16 CPU tensors go through adamkit's single-pass C kernel (:mod:`.cpu`);
  other tensors, or a machine without a C compiler, get ``l1 * sign(p)`` added to the
  gradient in one extra foreach pass, then ``_fused_adam_``.

Tensors whose memory is not flat-indexable alike (a strided param, or a grad with other
strides, which torch's fused kernels update wrongly) go through the reference kernel.
Params, grads and states share a dtype (float64, float32, bfloat16 or float16); each
``step`` is a float32 tensor on the param's device, as torch's fused path keeps it.
"""

import torch

from adamkit.torch.kernels import cpu, foreach, reference, split_by_layout

STEP_ON_DEVICE = True


def _pick(lists, index):
    return [[ts[i] for i in index] if ts else ts for ts in lists]


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2,
         eps, l2, l1, shrink, amsgrad, maximize):
    hyper = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, l2=l2, l1=l1, shrink=shrink, amsgrad=amsgrad,
                 maximize=maximize)
    lists = [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else [], steps]
    flat, rest = split_by_layout(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
    if rest:
        reference.adam(*_pick(lists, rest), **hyper)
    done = set()
    for dtype, kernel in ((cpu.load() or {}) if l1 else {}).items():
        mine = [i for i in flat if params[i].device.type == "cpu" and params[i].dtype == exp_avgs[i].dtype == dtype]
        if mine:
            cpu.adam(kernel, *_pick(lists, mine), **hyper)
            done.update(mine)
    others = [i for i in flat if i not in done]
    if others:
        _fused(*_pick(lists, others), **hyper)


def _fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2,
           eps, l2, l1, shrink, amsgrad, maximize):
    if maximize and l1:  # the sign term must see the maximized gradient: fold maximize in here
        grads, maximize = torch._foreach_neg(grads), False
    if l1:
        grads = torch._foreach_add(grads, torch._foreach_sign(params), alpha=l1)
    if shrink != 1 and lr == 0:  # nothing to fold the shrink into: apply it on its own
        torch._foreach_mul_(params, shrink)
    decoupled = shrink != 1 and lr != 0
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    weight_decay = (1 - shrink) / lr if decoupled else l2
    lists = [params, grads, exp_avgs, exp_avg_sqs, steps] + ([max_exp_avg_sqs] if amsgrad else [])
    for p, g, m, v, s, *vmax in foreach._buckets(*lists):
        torch._foreach_add_(s, 1)
        fused(p, g, m, v, vmax[0] if amsgrad else [], s, lr=lr, beta1=beta1, beta2=beta2,
              weight_decay=weight_decay, eps=eps, amsgrad=amsgrad, maximize=maximize)


def sgd(params, grads, momentum_buffers, **kwargs):
    return foreach.sgd(params, grads, momentum_buffers, **kwargs)
