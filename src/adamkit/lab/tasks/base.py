"""What every task gives the lab: data, a model, a loss, metrics and budgets.

A task is a description (class attributes, read by ``adamkit tasks`` and by
:func:`adamkit.lab.run.run` for defaults) plus :meth:`Task.setup`, which builds one
:class:`Problem` for a run: the model and two functions, ``loss(step)`` for one training
step and ``evaluate()`` for the metrics of every split.
"""

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Problem:
    """One run's model and how to train and measure it.

    ``loss(step)`` returns the scalar training loss of step ``step`` (1-based) as a tensor
    with a graph (the run calls ``backward`` and the optimizer). ``evaluate()`` returns
    ``{split: {metric: value}}`` for the splits the task has (``train``, ``val``, ``test``;
    ``model`` for facts about the weights).
    """

    model: torch.nn.Module
    loss: Callable[[int], torch.Tensor]
    evaluate: Callable[[], dict]


class Task:
    """Base class of a task: override the attributes and :meth:`setup`."""

    name = ""
    summary = ""             # one line: what is learned
    data_source = ""         # where the data comes from (nothing is downloaded)
    models = ("default",)    # variants for ``--model``; the first is the default
    metric_text = ""         # the primary metric, in words
    primary = "loss"
    higher_is_better = False
    baseline = ""            # the trivial baseline a trained model must beat
    budget = 1000            # default steps
    quick_budget = 100       # ``--quick`` steps
    evals = 20               # evaluations per run
    init = "he_normal"       # default initializer (adamkit.init)
    nonlinearity = "relu"    # the gain He and Xavier initializers use
    lr = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-3}  # default lr by optimizer family
    weight_decay = {"l2": 1e-4, "l1": 1e-5, "decoupled": 1e-2, "independent": 1e-5}  # by decay mode
    takes_data = False       # accepts ``--data FILE``

    def default_lr(self, optimizer, family):
        return self.lr.get(optimizer, self.lr[family])

    def default_weight_decay(self, mode):
        return self.weight_decay.get(mode, 0.0)

    def check_data(self, path):
        """Raise ValueError (naming the line) if ``path`` is not usable data for this task."""
        raise ValueError(f"task {self.name!r} takes no data file")

    def setup(self, config, dtype, device) -> Problem:
        raise NotImplementedError


MAX_DATA_BYTES = 256 << 20


def read_utf8(path):
    """The text of the user's ``--data`` file; ValueError (naming the line) if it cannot be read."""
    try:
        with open(path, "rb") as f:
            if stat.S_ISCHR(os.fstat(f.fileno()).st_mode) or stat.S_ISBLK(os.fstat(f.fileno()).st_mode):
                raise ValueError(f"--data {path!r} is a device, not a data file")
            raw = f.read(MAX_DATA_BYTES + 1)
    except FileNotFoundError:
        raise ValueError(f"--data {path!r}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"--data {path!r} is a directory, not a file") from None
    except OSError as e:
        raise ValueError(f"--data {path!r} cannot be read: {e.strerror or e}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise ValueError(f"--data {path!r} is larger than {MAX_DATA_BYTES >> 20} MiB, the most the lab reads "
                         "into memory")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"--data {path!r}, line {line}: not UTF-8 text ({e.reason})") from None


def batches(n, batch_size, generator):
    """Endless shuffled mini-batch indices: a new permutation every epoch."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def classification(model, splits, batch_size, generator, device):
    """``Problem`` parts for a classifier: cross-entropy loss on shuffled batches; error,
    accuracy and loss on every split. ``splits``: {name: (x, y)} with a ``train`` entry."""
    x_train, y_train = splits["train"]
    order = batches(len(x_train), min(batch_size, len(x_train)), generator)

    def loss(step):
        idx = next(order).to(device)
        return torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {}
        for name, (x, y) in splits.items():
            logits = torch.cat([model(x[i:i + 2048]) for i in range(0, len(x), 2048)])
            error = (logits.argmax(1) != y).float().mean().item()
            out[name] = {"error": error, "accuracy": 1 - error,
                         "loss": torch.nn.functional.cross_entropy(logits.float(), y).item()}
        model.train()
        return out

    return loss, evaluate
