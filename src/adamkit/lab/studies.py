"""Regression problems generated in code (nothing is downloaded).

Every study is full-batch least squares on features ``featurize(x)`` of a scalar input
``x``: targets ``y`` of shape (n, 1), a held-out test split from the same law, and the
weight decay each optimizer uses by default on it.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Study:
    name: str
    title: str
    x_train: np.ndarray  # raw inputs, (n, 1)
    y_train: np.ndarray  # (n, 1)
    x_test: np.ndarray
    y_test: np.ndarray
    degree: int = 1  # features are x, x**2, ..., x**degree
    weight_decay: dict = field(default_factory=dict)  # optimizer name -> default weight decay

    def features(self, x):
        return x ** np.arange(1, self.degree + 1)


def line(n=100, noise=0.1, seed=0):
    """y = 2x + noise, x ~ U[0, 1): the linear regression every optimizer course starts from.

    ``y`` has shape (n, 1) like ``x``; a (n,) target against (n, 1) predictions would
    broadcast the loss into an (n, n) matrix and fit nonsense. Decay is mild here: the
    fit should find the line.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (2 * n, 1))
    y = 2.0 * x + noise * rng.standard_normal((2 * n, 1))
    wd = {"adam_l2": 1e-3, "adam_l1": 1e-3, "adamw": 0.01, "adamw_independent": 5e-4}
    return Study("line", "y = 2x + noise", x[:n], y[:n], x[n:], y[n:], 1, wd)


def poly(n=20, degree=15, noise=0.3, n_test=300, seed=0):
    """sin(pi x) + noise on 20 points, fitted with a degree-15 polynomial: without decay
    the fit chases the noise; each decay mode tames it differently."""
    rng = np.random.default_rng(seed + 2)
    x = rng.uniform(-1.0, 1.0, (n + n_test, 1))
    y = np.sin(np.pi * x) + noise * rng.standard_normal((n + n_test, 1))
    wd = {"adam_l2": 0.01, "adam_l1": 0.01, "adamw": 1.0, "adamw_independent": 0.02}
    title = f"sin(πx) + noise, degree-{degree} polynomial, {n} training points"
    return Study("poly", title, x[:n], y[:n], x[n:], y[n:], degree, wd)


STUDIES = {"line": line, "poly": poly}
