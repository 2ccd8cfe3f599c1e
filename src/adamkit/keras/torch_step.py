"""The step of adamkit's Keras optimizers on the torch backend, through adamkit.torch's kernels.

Keras runs torch eagerly: one :mod:`adamkit.rules` call per variable dispatches about twenty
small ``keras.ops`` calls, each allocating a full-size temporary, where Keras's own torch
optimizers make a few ``torch._foreach_*`` calls for all variables. Here the variables' torch
tensors go to :func:`adamkit.torch.kernels.plan` and the kernels it picks (the C kernel on the
CPU, every rounding mode included; torch's fused kernels or Triton on GPUs), as
:class:`adamkit.torch.Adam` does: the rule's numbers to float rounding, in place, one
multi-tensor call per kernel.

Keras's conventions map onto the kernels' scalars: ``epsilon_hat`` is PyTorch's epsilon
placement with ``epsilon / sqrt(1 - beta_2**t)``; variables excluded from weight decay form a
second group with ``wd = 0``; Keras's step ``iterations + 1`` is every tensor's ``step``.
"""

import torch

from adamkit import rules
from adamkit.torch import kernels


def _scalars(optimizer, learning_rate):
    """``(lr, eta)`` as host floats; ``eta`` clipped to [0, 1] as :meth:`_Base._eta` does."""
    lr = float(learning_rate)
    if optimizer.decay_mode != "independent":
        return lr, 1.0
    return lr, min(max(lr / optimizer.reference_learning_rate, 0.0), 1.0)


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


def _value(slots, i):
    """The torch tensor of optimizer slot ``i`` (momentum, velocity, ...); None where there are no such slots."""
    return slots[i].value if slots else None


def _run(rule, optimizer, params, grads, states, scalars, keys, comps, step, l1):
    """Plan the tensors and hand each kernel its share (``states``: per tensor, the rule's state tensors)."""
    choices = kernels.plan(rule, "auto", params, grads, l1=l1, others=states, rounding=optimizer.rounding)
    steps = _steps(step, choices, params)
    for name, idx in kernels.split(choices).items():
        kernel = kernels.KERNELS[name]
        extra = {}
        if "stochastic" in kernel.roundings and optimizer.rounding != "nearest":
            extra["rounding"] = kernels.Rounding(optimizer.rounding, optimizer.rounding_seed, _pick(keys, idx),
                                                 _pick(steps, idx), _pick(comps, idx))
        lists = [[states[j][k] for j in idx] for k in range(len(states[0]))]
        if rule == "adam":
            m, v, vmax = lists
            kernel.module.adam(_pick(params, idx), _pick(grads, idx), m, v, vmax if optimizer.amsgrad else [],
                               _pick(steps, idx), scalars, **extra)
        else:
            kernel.module.sgd(_pick(params, idx), _pick(grads, idx), lists[0], scalars, **extra)


@torch.no_grad()
def update(optimizer, grads, variables, learning_rate):
    """One step of ``optimizer`` (an adamkit.keras SGD, Adam or AdamW) over ``variables``."""
    lr, eta = _scalars(optimizer, learning_rate)
    step = int(optimizer.iterations) + 1
    index = [optimizer._get_variable_index(v) for v in variables]
    params = [v.value for v in variables]
    grads = [g.to(p.dtype) for g, p in zip(grads, params)]
    comps = [None if optimizer._kahan_comps[i] is None else optimizer._kahan_comps[i].value for i in index]
    if hasattr(optimizer, "momentum"):
        rule = "sgd"
        states = [[_value(optimizer._momentums, i)] for i in index]
    else:
        rule = "adam"
        states = [[_value(optimizer._momentums, i), _value(optimizer._velocities, i),
                   _value(optimizer._velocity_hats, i)] for i in index]
        eps = optimizer.epsilon / (1 - optimizer.beta_2**step) ** 0.5 if optimizer.epsilon_hat else optimizer.epsilon
    for wd, idx in _groups(optimizer, variables).items():
        terms = rules.decay_terms(optimizer.decay_mode, wd, lr, eta)
        if rule == "adam":
            scalars = kernels.AdamScalars(lr, optimizer.beta_1, optimizer.beta_2, eps, *terms, optimizer.amsgrad,
                                          False)
        else:
            scalars = kernels.SGDScalars(lr, optimizer.momentum, 0.0, optimizer.nesterov, *terms, False)
        _run(rule, optimizer, _pick(params, idx), _pick(grads, idx), _pick(states, idx), scalars, _pick(index, idx),
             _pick(comps, idx), step, l1=terms.l1 != 0)
