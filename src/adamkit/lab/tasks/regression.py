"""The demo's full-batch regression studies as tasks: ``line`` and ``poly``.

The model is ``y = X w + b`` on the study's features; the loss is half the mean squared
error (so L2 decay ``wd`` has the ridge solution), evaluated every step on the whole
training set and the test set. See :mod:`adamkit.lab.studies` for the data.
"""

import torch

from adamkit.lab import studies
from adamkit.lab.tasks.base import Problem, Task


class Regression(Task):
    models = ("linear",)
    metric_text = "test mean squared error"
    primary = "mse"
    higher_is_better = False
    budget = 2000
    quick_budget = 200
    evals = None  # every step
    init = "zeros"
    nonlinearity = "linear"
    lr = {"sgd": 0.1, "momentum": 0.02, "adam": 0.05}

    def setup(self, config, dtype, device):
        study = studies.STUDIES[self.name](seed=config.seed)
        model = torch.nn.Linear(study.degree, 1, dtype=dtype)

        def tensor(a):
            return torch.as_tensor(a, dtype=dtype, device=device)

        x_train, y_train = tensor(study.features(study.x_train)), tensor(study.y_train)
        splits = {"train": (x_train, y_train),
                  "test": (tensor(study.features(study.x_test)), tensor(study.y_test))}

        def loss(step):
            return 0.5 * ((model(x_train) - y_train) ** 2).mean()

        @torch.no_grad()
        def evaluate():
            return {name: {"mse": ((model(x) - y) ** 2).mean().item()} for name, (x, y) in splits.items()}

        return Problem(model, loss, evaluate)


class Line(Regression):
    name = "line"
    summary = "y = 2x + noise, linear regression on 100 points (the demo's first study)"
    data_source = "generated: x ~ U[0, 1), noise N(0, 0.1²), 100 train and 100 test points"
    baseline = "predicting the mean of y"
    weight_decay = {"l2": 1e-3, "l1": 1e-3, "decoupled": 0.01, "independent": 5e-4}


class Poly(Regression):
    name = "poly"
    summary = "sin(πx) + noise fitted by a degree-15 polynomial on 20 points (the demo's second study)"
    data_source = "generated: x ~ U[-1, 1), noise N(0, 0.3²), 20 train and 300 test points"
    baseline = "predicting the mean of y"
    weight_decay = {"l2": 0.01, "l1": 0.01, "decoupled": 1.0, "independent": 0.02}
