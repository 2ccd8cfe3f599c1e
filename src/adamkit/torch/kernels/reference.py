"""The readable per-tensor loop, derived from the algorithm records: each tensor goes through
its rule in :mod:`adamkit.rules`, so every algorithm has this kernel without code of its own.

Half-precision params and states are updated in float32 and rounded once on store, so this
path is at least as accurate as torch.optim's for-loop. A quantized moment
(:class:`adamkit.rules.Quantized`, ``state_dtype="8bit"`` or ``"4bit"``) is dequantized to
float32, goes through the rule, and is requantized into its codes and scales. It takes any layout, any device,
sparse SGD gradients, and lets autograd flow through the step (``differentiable=True``).
"""

import torch

from adamkit.rules import ALGORITHMS, Quantized
from adamkit.torch.kernels import rounding as rnd


def _opmath(t):
    """The value to compute with: fp32 for half tensors. Under autograd (``differentiable=True``)
    a copy, since the tensor is overwritten in place after the math has read it."""
    if t is None:
        return None
    if isinstance(t, Quantized):  # a quantized moment: its float32 value
        return t.value()
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


def _store(slot, old, new, p):
    """Write a slot's new value; returns the tensor that holds it (new where there was none)."""
    if isinstance(old, Quantized):  # requantized: codes and scales in place
        return old.store(new)
    if not slot.lazy:
        return old.copy_(new) if old is not None else None
    if new is None:
        return None
    if old is None or old.is_sparse or new.is_sparse:  # a buffer created now (a sparse one each step)
        return new.to(p.dtype, copy=True)
    return old.copy_(new)


def step(algorithm, params, grads, *lists, rounding=None):
    """One step of ``algorithm`` (a name in :data:`adamkit.rules.ALGORITHMS`), tensor by tensor.

    ``lists`` are the record's slots (a list per slot, of tensors or None), then ``steps`` if it
    counts them, then the scalars. Returns the lazy slot's tensors (see :func:`~adamkit.torch.kernels.run`).
    """
    record = ALGORITHMS[algorithm]
    *lists, h = lists
    slots, steps = lists[:len(record.slots)], lists[len(record.slots):]
    kept = record.kept(h)
    out = []
    for i, (p, g) in enumerate(zip(params, grads)):
        olds = [values[i] if slot in kept and values else None for slot, values in zip(record.slots, slots)]
        value, store = _param(p, i, rounding)
        count = dict(step=_value(steps[0][i])) if record.counts_steps else {}
        new_p, *news = record.rule(value, _opmath(g), *map(_opmath, olds), **count, **h._asdict())
        store(new_p)
        held = [_store(slot, old, new, p) for slot, old, new in zip(record.slots, olds, news) if slot in kept]
        out.append(next((t for slot, t in zip(kept, held) if slot.lazy), None))
    return out


def __getattr__(name):
    """``adam(...)``, ``sgd(...)``: :func:`step` for every algorithm record."""
    if name in ALGORITHMS:
        return lambda *args, **kwargs: step(name, *args, **kwargs)
    raise AttributeError(name)
