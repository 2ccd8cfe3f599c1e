"""adamkit.schedules as torch LR schedulers."""

import torch


def scheduler(optimizer, schedule, last_epoch=-1):
    """A torch ``LambdaLR`` that sets ``lr = initial_lr * schedule(step)`` for every group.

    Its multiplier is ``eta_t`` for ``decay="independent"`` (measured against ``reference_lr``,
    the constructor's ``lr``), so the decay follows ``schedule(step)``.

    >>> import torch, adamkit.torch, adamkit.schedules
    >>> opt = adamkit.torch.AdamW([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = scheduler(opt, adamkit.schedules.warmup_cosine(100, 10))
    >>> opt.param_groups[0]["lr"]
    0.0
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=last_epoch)
