"""``digits``: scikit-learn's 8×8 handwritten digits with a small CNN.

1,797 images ship with scikit-learn; a fixed shuffle splits them into 997 train, 200
validation and 600 test images. Every reasonable setting lands at 1–3% test error, so
seed noise is the size of most effects: a smoke test and an init study, not a place to
separate optimizers.
"""

import numpy as np
import torch

from adamkit.lab.tasks.base import Problem, Task, classification


class SmallCNN(torch.nn.Sequential):
    def __init__(self, dtype):
        super().__init__(
            torch.nn.Conv2d(1, 16, 3, padding=1, dtype=dtype), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1, dtype=dtype), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 10, dtype=dtype))


class Digits(Task):
    name = "digits"
    summary = "8×8 handwritten digits, small CNN (2 conv layers)"
    data_source = "scikit-learn's load_digits (1,797 images, ships with the package): 997 train, 200 val, 600 test"
    models = ("cnn",)
    metric_text = "test error (fraction misclassified)"
    primary = "error"
    baseline = "chance: error 0.9"
    budget = 1500
    quick_budget = 150
    evals = 15
    lr = {"sgd": 0.05, "momentum": 0.02, "adam": 3e-3}

    def setup(self, config, dtype, device):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        x = torch.as_tensor(x[order] / 16.0, dtype=dtype, device=device).reshape(-1, 1, 8, 8)
        y = torch.as_tensor(y[order], device=device)
        splits = {"train": (x[:997], y[:997]), "val": (x[997:1197], y[997:1197]), "test": (x[1197:], y[1197:])}
        model = SmallCNN(dtype)
        loss, evaluate = classification(model, splits, 64, torch.Generator().manual_seed(config.seed), device)
        return Problem(model, loss, evaluate)
