"""The step of adamkit's Keras optimizers on the torch backend, through adamkit.torch's kernels.

Keras runs torch eagerly: one :mod:`adamkit.rules` call per variable dispatches about twenty
small ``keras.ops`` calls, each allocating a full-size temporary, where Keras's own torch
optimizers make a few ``torch._foreach_*`` calls for all variables. Here the variables' torch
tensors go to :func:`adamkit.torch.kernels.plan` and the kernels it picks (the C kernel on the
CPU, every rounding mode included; torch's fused kernels or Triton on GPUs), as
:class:`adamkit.torch.Adam` does: the rule's numbers to float rounding, in place, one
multi-tensor call per kernel.

Keras's conventions map onto the kernels' scalars (each optimizer's ``_scalar_bundle``):
``epsilon_hat`` is PyTorch's epsilon placement with ``epsilon / sqrt(1 - beta_2**t)``;
variables excluded from weight decay form a second group with ``wd = 0``; Keras's step
``iterations + 1`` is every tensor's ``step``. :func:`adamkit.torch.kernels.run` hands each
kernel its share, as it does for :mod:`adamkit.torch`.
"""

import torch

from adamkit import rules
from adamkit.torch import kernels


def _scalars(optimizer, learning_rate):
    """``(lr, eta)`` as host floats (see :meth:`adamkit.keras.optimizers._Base._eta`)."""
    lr = float(learning_rate)
    if not rules.DECAY_MODES[optimizer.decay_mode].reads_eta:
        return lr, 1.0
    return lr, lr / optimizer.reference_learning_rate


def _groups(optimizer, variables):
    """Indices into ``variables`` by the weight decay each takes (Keras's exclusions give 0)."""
    out = {}
    for j, variable in enumerate(variables):
        out.setdefault(optimizer._decay(variable), []).append(j)
    return out


def _steps(step, choices, params):
    """Per tensor, a ``step`` tensor where its kernel reads it (kernels never increment it)."""
    made = {}
    out = []
    for choice, p in zip(choices, params):
        device = p.device if kernels.KERNELS[choice.kernel].step_on_device else torch.device("cpu")
        if device not in made:
            made[device] = torch.tensor(float(step), dtype=torch.float32, device=device)
        out.append(made[device])
    return out


def _pick(tensors, idx):
    return [tensors[j] for j in idx]


@torch.no_grad()
def update(optimizer, grads, variables, learning_rate):
    """One step of ``optimizer`` (an adamkit.keras SGD, Adam or AdamW) over ``variables``."""
    record = rules.ALGORITHMS[optimizer.algorithm]
    lr, eta = _scalars(optimizer, learning_rate)
    step = int(optimizer.iterations) + 1
    index = [optimizer._get_variable_index(v) for v in variables]
    params = [v.value for v in variables]
    grads = [g.to(p.dtype) for g, p in zip(grads, params)]
    comps = [None if optimizer._kahan_comps[i] is None else optimizer._kahan_comps[i].value for i in index]
    slots = [[None if not optimizer._slots(slot.name) else optimizer._slots(slot.name)[i].value for i in index]
             for slot in record.slots]
    for wd, idx in _groups(optimizer, variables).items():
        terms = rules.decay_terms(optimizer.decay_mode, wd, lr, eta)
        warning = rules.decay_warning(optimizer.decay_mode, terms, lr=lr, weight_decay=wd,
                                      reference_lr=optimizer.reference_learning_rate, eta=eta)
        if warning:
            optimizer._warn_once(warning)
        h = optimizer._scalar_bundle(lr, terms, step)
        ps, group_slots = _pick(params, idx), [_pick(values, idx) for values in slots]
        choices = kernels.plan(record.name, "auto", ps, _pick(grads, idx), l1=terms.l1 != 0,
                               others=[[values[j] for values in group_slots] for j in range(len(idx))],
                               rounding=optimizer.rounding)
        steps = _steps(step, choices, ps)
        keys, group_comps = _pick(index, idx), _pick(comps, idx)

        def rounding(sub, steps=steps, keys=keys, group_comps=group_comps):
            return kernels.Rounding(optimizer.rounding, optimizer.rounding_seed, _pick(keys, sub),
                                    _pick(steps, sub), _pick(group_comps, sub))

        kernels.run(record.name, choices, ps, _pick(grads, idx), group_slots, steps, lambda kernel, h=h: h,
                    rounding if optimizer.rounding != "nearest" else None)
