"""torch's fused Adam/AdamW kernels, driven for every decay mode.

- ``l2``: ``torch._fused_adam_`` with ``weight_decay = l2`` (coupled, exactly torch.optim.Adam).
- ``decoupled`` and ``independent``: ``torch._fused_adamw_`` with ``weight_decay = (1 - shrink) / lr``,
  so its ``p *= 1 - lr * weight_decay`` is the mode's shrink.
- ``l1``: ``l1 * sign(p)`` is added to the gradient in one extra foreach pass, then ``_fused_adam_``
  (on float32/bfloat16 CPU tensors the plan prefers the single-pass C kernel, :mod:`.cpu`).

Params, grads and states share a dtype and a layout (the plan checks); each ``step`` is a
float32 tensor on the param's device, as torch's fused path keeps it. ``grad_scale`` and
``found_inf`` follow torch's fused protocol (GradScaler): grads are unscaled inside the kernel
and a step with an inf is skipped, its ``step`` count taken back.
"""

import torch

from adamkit.torch.kernels import foreach


# Under torch.compile the fused kernel runs as it is, outside the graph, as torch.optim's fused
# path does: AOT functionalization cannot mutate parameters through this op.
@torch._disable_dynamo
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, grad_scale=None, found_inf=None):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    if l1:
        if grad_scale is not None:  # the sign term is added to true gradients, not to scaled ones
            grads = torch._foreach_div(grads, grad_scale)
            grad_scale = None
        if maximize:  # the sign term must see the maximized gradient: fold maximize in here
            grads, maximize = torch._foreach_neg(grads), False
        grads = torch._foreach_add(grads, torch._foreach_sign(params), alpha=l1)
    if shrink != 1 and lr == 0:  # nothing to fold the shrink into: apply it on its own
        torch._foreach_mul_(params, shrink)
    decoupled = shrink != 1 and lr != 0
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    weight_decay = (1 - shrink) / lr if decoupled else l2
    lists = [params, grads, exp_avgs, exp_avg_sqs, steps] + ([max_exp_avg_sqs] if amsgrad else [])
    for (p, g, m, v, s, *vmax), _ in foreach._buckets(*lists):
        device = p[0].device
        scale = grad_scale.to(device) if grad_scale is not None else None
        inf = found_inf.to(device) if found_inf is not None else None
        fused(p, g, m, v, vmax[0] if amsgrad else [], s, lr=lr, beta1=beta1, beta2=beta2,
              weight_decay=weight_decay, eps=eps, amsgrad=amsgrad, maximize=maximize,
              grad_scale=scale, found_inf=inf)
        if inf is not None:
            torch._foreach_sub_(s, [inf] * len(s))
