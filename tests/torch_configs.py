"""One table of torch optimizer configurations; every test iterates over it."""

import torch

import adamkit.torch as ak
from adamkit import rules

# (name, adamkit class, torch.optim class, kwargs both accept)
CONFIGS = [
    ("sgd", ak.SGD, torch.optim.SGD, dict(lr=0.05)),
    ("sgd-wd", ak.SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.1)),
    ("sgd-momentum", ak.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd-dampening", ak.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1)),
    ("sgd-nesterov", ak.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("sgd-maximize", ak.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5, maximize=True)),
    ("adam", ak.Adam, torch.optim.Adam, dict(lr=1e-2)),
    ("adam-l2", ak.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    ("adam-amsgrad", ak.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("adam-maximize", ak.Adam, torch.optim.Adam, dict(lr=1e-2, maximize=True, betas=(0.8, 0.99))),
    ("adam-decoupled", ak.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adamw", ak.AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    ("adamw-wd", ak.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.3, eps=1e-6)),
    ("adamw-amsgrad", ak.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.3, amsgrad=True, maximize=True)),
]

IMPLS = ["reference", "foreach", "fused"]
DECAYS = list(rules.DECAY_MODES)


def make_params(dtype, seed=0, shapes=((5, 3), (3,), (), (0,), (2, 2, 3))):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]


def set_grads(params_lists, gen):
    """The same fresh random gradient for the matching tensor of each list."""
    for ps in zip(*params_lists):
        g = torch.randn(ps[0].shape, generator=gen, dtype=torch.float64) + 0.3 * ps[0].detach().double()
        for p in ps:
            p.grad = g.to(p.dtype)
