"""PyTorch optimizers: drop-in for torch.optim, plus weight-decay modes and fast kernels.

>>> import torch, adamkit.torch
>>> model = torch.nn.Linear(4, 1)
>>> opt = adamkit.torch.AdamW(adamkit.torch.param_groups(model, weight_decay=0.1), lr=1e-3)
"""

from adamkit.torch.groups import ParamGroups, param_groups
from adamkit.torch.init import init_model
from adamkit.torch.optim import SGD, Adam, AdamW, AdEMAMix, StableAdamW
from adamkit.torch.schedule import scheduler

__all__ = ["SGD", "Adam", "AdamW", "StableAdamW", "AdEMAMix", "param_groups", "ParamGroups", "init_model", "scheduler"]
