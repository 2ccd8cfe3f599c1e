"""``mnist1d``: Greydanus's MNIST-1D, generated in code by the ``mnist1d`` package.

``mnist1d.data.make_dataset`` with the authors' default arguments (5,000 signals of
length 40, 10 classes, seed 42): their 4,000 training signals are split into 3,500 train
and 500 validation; their 1,000 test signals are the test set. Models (``--model``): the
authors' MLP (40-100-100-10, ReLU), the same MLP with BatchNorm, the authors' CNN (three
stride-2 convolutions, 25 channels), and ``deep``, a 10-layer ReLU MLP of width 100 for the
init study. Chance is 90% error; the authors report 32% (MLP) and 6% (CNN) test error.
"""

import functools

import torch

from adamkit.lab.tasks.base import Problem, Task, classification


@functools.lru_cache(maxsize=1)
def dataset():
    """The authors' default MNIST-1D, made offline (never ``get_dataset(download=True)``)."""
    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()  # make_dataset seeds NumPy's global generator
    try:
        return make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)


def mlp(dtype, depth=3, width=100, norm=False):
    layers, size = [], 40
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(size, width, dtype=dtype)]
        layers += [torch.nn.BatchNorm1d(width, dtype=dtype)] if norm else []
        layers += [torch.nn.ReLU()]
        size = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(size, 10, dtype=dtype))


def cnn(dtype):
    def conv(i, k):
        return torch.nn.Conv1d(i, 25, k, stride=2, padding=1, dtype=dtype)

    return torch.nn.Sequential(torch.nn.Unflatten(1, (1, 40)), conv(1, 5), torch.nn.ReLU(), conv(25, 3),
                               torch.nn.ReLU(), conv(25, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(25 * 5, 10, dtype=dtype))


MODELS = {"mlp": mlp, "mlp_bn": functools.partial(mlp, norm=True), "cnn": cnn,
          "deep": functools.partial(mlp, depth=10)}


class MNIST1D(Task):
    name = "mnist1d"
    summary = "MNIST-1D signals (length 40, 10 classes): MLP, MLP with BatchNorm, CNN, 10-layer MLP"
    data_source = ("generated offline by mnist1d.data.make_dataset with the authors' defaults: "
                   "3,500 train, 500 val, 1,000 test")
    models = tuple(MODELS)
    metric_text = "test error (fraction misclassified)"
    primary = "error"
    baseline = "chance: error 0.9"
    budget = 4000
    quick_budget = 300
    evals = 20
    lr = {"sgd": 0.1, "momentum": 0.02, "adam": 3e-3}
    weight_decay = {"l2": 1e-4, "l1": 1e-5, "decoupled": 0.1, "independent": 3e-4}

    def setup(self, config, dtype, device):
        data = dataset()

        def tensors(x, y):
            return torch.as_tensor(x, dtype=dtype, device=device), torch.as_tensor(y, device=device)

        splits = {"train": tensors(data["x"][:3500], data["y"][:3500]),
                  "val": tensors(data["x"][3500:], data["y"][3500:]),
                  "test": tensors(data["x_test"], data["y_test"])}
        model = MODELS[config.model or self.models[0]](dtype)
        loss, evaluate = classification(model, splits, 100, torch.Generator().manual_seed(config.seed), device)
        return Problem(model, loss, evaluate)
