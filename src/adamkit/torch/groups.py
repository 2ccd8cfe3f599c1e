"""Split a model's parameters into a decayed and a non-decayed param group.

The convention of GPT-2/BERT training code, done once: matrices and conv kernels
(``ndim >= 2``) are decayed; biases, norm-layer weights, scalars and any name
matching a ``no_decay`` glob pattern are not.
"""

from fnmatch import fnmatch

import torch

_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm,
          torch.nn.LocalResponseNorm, torch.nn.RMSNorm)


class ParamGroups(list):
    """A list of param groups (pass it to any optimizer) that knows what it decays."""

    @property
    def counts(self):
        """``{"decay": (tensors, elements), "no_decay": (tensors, elements)}``."""
        return {g["name"]: (len(g["params"]), sum(p.numel() for p in g["params"])) for g in self}

    def __str__(self):
        return "; ".join(f"{name}: {n} tensors, {e:,} elements" for name, (n, e) in self.counts.items())


def param_groups(model, weight_decay, no_decay=(), *, names=False):
    """Two param groups for ``model``: ``weight_decay`` on weights, 0 on the rest.

    ``no_decay``: glob patterns over parameter names (``"*.bias"``, ``"pos_emb*"``)
    that are never decayed. ``names=True`` adds torch's ``param_names`` to each group.
    Frozen parameters (``requires_grad=False``) are left out.

    >>> import torch
    >>> groups = param_groups(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2)), 0.1)
    >>> str(groups)
    'decay: 1 tensors, 6 elements; no_decay: 3 tensors, 6 elements'
    """
    if isinstance(no_decay, str):
        no_decay = (no_decay,)
    in_norm = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    split = {"decay": [], "no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or id(p) in in_norm or any(fnmatch(name, pat) for pat in no_decay)
        split["no_decay" if skip else "decay"].append((name, p))
    groups = ParamGroups()
    for key, decay in (("decay", weight_decay), ("no_decay", 0.0)):
        group = {"name": key, "params": [p for _, p in split[key]], "weight_decay": decay}
        if names:
            group["param_names"] = [n for n, _ in split[key]]
        groups.append(group)
    return groups
