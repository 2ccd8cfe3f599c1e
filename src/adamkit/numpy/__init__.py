"""NumPy optimizers with torch.optim's shape over :mod:`adamkit.rules`.

Adam's step runs the rule chunk by chunk in place (no parameter-sized temporaries); SGD
calls the rule directly.

>>> import numpy as np, adamkit.numpy
>>> w, b = np.zeros((3, 2)), np.zeros(2)
>>> opt = adamkit.numpy.AdamW([w, b], lr=1e-3, weight_decay=1e-2)
>>> opt.step([np.ones((3, 2)), np.ones(2)])   # updates w and b in place
"""

from adamkit.numpy.optim import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
