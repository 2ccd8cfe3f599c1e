"""Full-batch training of a linear model ``y = X w + b`` on a study, with any backend.

The objective is half the mean squared error, ``f = mean((Xw + b - y)**2) / 2``, so an L2
penalty ``wd`` has the ridge solution ``(XᵀX/n + wd I)⁻¹ Xᵀy/n``. Reported losses are
plain MSE. The bias is never decayed. Both backends compute in float64 and give the
same numbers to rounding.
"""

import numpy as np

from adamkit import init
from adamkit.lab.optimizers import Spec

BACKENDS = ("torch", "numpy")
METRICS = ("train_loss", "test_loss", "weight_norm", "lr")


def _optimizer(module, spec: Spec, params, schedule_lr):
    w, b = params
    groups = [{"params": [w], "weight_decay": spec.weight_decay}, {"params": [b], "weight_decay": 0.0}]
    if spec.family == "sgd":
        return module.SGD(groups, lr=schedule_lr, decay=spec.decay, **spec.options)
    return module.Adam(groups, lr=schedule_lr, decay=spec.decay, **spec.options)


def _mse(x, w, b, y):
    return float(np.mean((x @ w + b - y) ** 2))


def train(study, spec: Spec, *, steps, backend="torch", schedule=None, init_scheme="zeros", seed=0,
          fit_intercept=True, progress=None):
    """Train and return ``(history, w, b)``; ``history`` maps each metric to an array of ``steps``.

    ``schedule`` (step -> multiplier, see :mod:`adamkit.schedules`) scales ``spec.lr``.
    """
    d = study.degree
    w0 = np.asarray(init.INITIALIZERS[init_scheme]((1, d), seed=seed), dtype=np.float64).T.copy()
    history = {k: np.empty(steps) for k in METRICS}
    step_fn, get = (_torch_steps if backend == "torch" else _numpy_steps)(study, spec, w0, fit_intercept)
    x_train, x_test = study.features(study.x_train), study.features(study.x_test)
    for t in range(steps):
        eta = schedule(t) if schedule else 1.0
        step_fn(spec.lr * eta)
        w, b = get()
        history["train_loss"][t] = _mse(x_train, w, b, study.y_train)
        history["test_loss"][t] = _mse(x_test, w, b, study.y_test)
        history["weight_norm"][t] = float(np.linalg.norm(w))
        history["lr"][t] = spec.lr * eta
        if progress:
            progress(1)
    w, b = get()
    return history, w, b


def _numpy_steps(study, spec, w0, fit_intercept):
    import adamkit.numpy as backend

    x, y, n = study.features(study.x_train), study.y_train, len(study.x_train)
    w, b = w0.copy(), np.zeros(1)
    opt = _optimizer(backend, spec, (w, b), spec.lr)

    def step(lr):
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr
        residual = x @ w + b - y  # (n, 1)
        grad_b = residual.mean(axis=0) if fit_intercept else np.zeros(1)
        opt.step([x.T @ residual / n, grad_b])

    return step, lambda: (w.copy(), float(b[0]))


def _torch_steps(study, spec, w0, fit_intercept):
    import torch

    import adamkit.torch as backend

    x = torch.from_numpy(study.features(study.x_train))
    y = torch.from_numpy(study.y_train)
    w = torch.tensor(w0, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=fit_intercept)
    opt = _optimizer(backend, spec, (w, b), spec.lr)

    def step(lr):
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss = 0.5 * ((x @ w + b - y) ** 2).mean()
        loss.backward()
        opt.step()

    return step, lambda: (w.detach().numpy().copy(), float(b.detach()[0]))
