"""The NumPy reference loop for the regression tasks (``adamkit demo --backend numpy``).

Full-batch training of ``y = X w + b`` with :mod:`adamkit.numpy`'s optimizers, written out
by hand: an independent check of :func:`adamkit.lab.run.run`, which trains the same
tasks with torch. The objective is half the mean squared error, ``f = mean((Xw + b - y)**2) / 2``,
so an L2 penalty ``wd`` has the ridge solution ``(XᵀX/n + wd I)⁻¹ Xᵀy/n``. Reported losses
are plain MSE; the bias is never decayed; the learning rate is constant.
"""

import math

import numpy as np

from adamkit import init
from adamkit.lab.optimizers import OPTIMIZERS


def _mse(x, w, b, y):
    return float(np.mean((x @ w + b - y) ** 2))


def train(study, optimizer, **options):
    """Train and return ``(history, w, b)``; ``history`` maps train_loss, test_loss,
    weight_norm and lr to lists, one value per step, up to a loss that is not finite
    (see :func:`train_run` for why a run stopped)."""
    history, w, b, _ = train_run(study, optimizer, **options)
    return history, w, b


def train_run(study, optimizer, *, lr, weight_decay=0.0, decay=None, steps, init_scheme="zeros", seed=0,
              fit_intercept=True, progress=None):
    """:func:`train`, and why the run stopped early (None when it did not): a loss that is not
    finite, or a weight-decay factor outside (0, 1] (see :func:`adamkit.lab.run.decay_factor_problem`)."""
    import adamkit.numpy as backend
    from adamkit.lab.run import decay_factor_problem

    spec = OPTIMIZERS[optimizer]
    x, y, n = study.features(study.x_train), study.y_train, len(study.x_train)
    x_test = study.features(study.x_test)
    w = np.asarray(init.INITIALIZERS[init_scheme]((1, study.degree), seed=seed), dtype=np.float64).T.copy()
    b = np.zeros(1)
    groups = [{"params": [w], "weight_decay": weight_decay}, {"params": [b], "weight_decay": 0.0}]
    cls = {"adam": backend.Adam, "sgd": backend.SGD}[spec.algorithm]
    opt = cls(groups, lr=lr, decay=decay or "l2", **spec.options)
    history = {k: [] for k in ("train_loss", "test_loss", "weight_norm", "lr")}
    reason = None
    for step in range(1, steps + 1):
        residual = x @ w + b - y  # (n, 1)
        loss = float(np.mean(residual ** 2))
        bad = decay_factor_problem(opt.param_groups)
        if not math.isfinite(loss) or bad:
            reason = f"{bad or f'loss became {loss}'} at step {step}"
            break
        grad_b = residual.mean(axis=0) if fit_intercept else np.zeros(1)
        opt.step([x.T @ residual / n, grad_b])
        history["train_loss"].append(_mse(x, w, b, y))
        history["test_loss"].append(_mse(x_test, w, b, study.y_test))
        history["weight_norm"].append(float(np.linalg.norm(w)))
        history["lr"].append(lr)
        if progress:
            progress(1)
    return history, w.copy(), float(b[0]), reason
