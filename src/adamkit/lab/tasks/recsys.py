"""``recsys``: matrix factorisation of a ratings matrix with missing entries.

By default the ratings are generated (nothing is downloaded): 1,000 users × 800 items, a
rank-8 preference matrix scaled to unit std around 3.5, plus N(0, 0.5²) noise, with 5% of
the entries observed (the noise floor of the held-out RMSE is 0.5). ``--data ratings.csv``
reads the user's ratings instead: lines ``user,item,rating`` (an optional header line).
Observed ratings are split 80/10/10 into train, val and test. The model predicts
``mean + b_user + b_item + <u_user, v_item>`` with 32-dimensional factors: far more
capacity than rank 8, so without weight decay it fits the noise.
"""

import csv
import functools
import math

import numpy as np
import torch

from adamkit.lab.tasks.base import Problem, Task, read_utf8


def generated(users=1000, items=800, rank=8, observed=0.05, noise=0.5, seed=0):
    """``(user, item, rating)`` arrays of the observed entries of a noisy low-rank matrix."""
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((users, rank)), rng.standard_normal((items, rank))
    keep = rng.random((users, items)) < observed
    rows, cols = np.nonzero(keep)
    signal = np.einsum("nk,nk->n", u[rows], v[cols]) / math.sqrt(rank)
    return rows, cols, 3.5 + signal + noise * rng.standard_normal(rows.size)


MAX_LINE = 4096  # characters per user,item,rating line: far above any real one, far below csv's field limit


def read_ratings(path):
    """``(user, item, rating)`` index arrays from ``user,item,rating`` lines; ValueError names
    the first bad line."""
    users, items, ratings = {}, {}, []
    lines = read_utf8(path).splitlines()
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE:
            raise ValueError(f"--data {path!r}, line {number}: {len(line)} characters; a user,item,rating line "
                             f"has at most {MAX_LINE}")
        try:
            row = next(csv.reader([line]), [])
        except csv.Error as e:
            raise ValueError(f"--data {path!r}, line {number}: not a CSV line ({e})") from None
        if not "".join(row).strip():
            continue
        if len(row) != 3:
            raise ValueError(f"--data {path!r}, line {number}: expected 3 columns user,item,rating, got {len(row)}")
        try:
            rating = float(row[2])
        except ValueError:
            if number == 1:  # a header line
                continue
            raise ValueError(f"--data {path!r}, line {number}: rating {row[2].strip()!r} is not a number") from None
        if not math.isfinite(rating):
            raise ValueError(f"--data {path!r}, line {number}: rating {row[2].strip()!r} is not finite")
        ratings.append((users.setdefault(row[0].strip(), len(users)),
                        items.setdefault(row[1].strip(), len(items)), rating))
    if len(ratings) < 20:
        raise ValueError(f"--data {path!r}: {len(ratings)} ratings; need at least 20 user,item,rating lines")
    a = np.array(ratings)
    return a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2]


@functools.lru_cache(maxsize=4)
def ratings(path):
    return read_ratings(path) if path else generated()


class Factorization(torch.nn.Module):
    def __init__(self, users, items, dim, mean, dtype):
        super().__init__()
        self.user, self.item = torch.nn.Embedding(users, dim, dtype=dtype), torch.nn.Embedding(items, dim, dtype=dtype)
        self.user_bias = torch.nn.Parameter(torch.zeros(users, dtype=dtype))
        self.item_bias = torch.nn.Parameter(torch.zeros(items, dtype=dtype))
        self.mean = mean

    def forward(self, u, i):
        return self.mean + self.user_bias[u] + self.item_bias[i] + (self.user(u) * self.item(i)).sum(-1)


class Recsys(Task):
    name = "recsys"
    summary = "matrix factorisation (32 factors + biases) of a ratings matrix with missing entries"
    data_source = ("generated: 1,000 users × 800 items, rank 8 + noise 0.5, 5% observed "
                   "(or --data ratings.csv: user,item,rating)")
    models = ("mf",)
    metric_text = "held-out RMSE of the ratings"
    primary = "rmse"
    baseline = "predicting the global mean rating"
    budget = 1500
    quick_budget = 200
    evals = 15
    init = "normal"
    nonlinearity = "linear"
    lr = {"sgd": 50.0, "momentum": 5.0, "adam": 1e-2}
    weight_decay = {"l2": 1e-4, "l1": 1e-5, "decoupled": 3.0, "independent": 0.03}
    takes_data = True

    def check_data(self, path):
        ratings(path)

    def setup(self, config, dtype, device):
        users, items, values = ratings(config.data)
        order = np.random.default_rng(0).permutation(values.size)
        cut = np.array_split(order, [int(0.8 * order.size), int(0.9 * order.size)])
        splits = {name: tuple(torch.as_tensor(a[idx], device=device) for a in (users, items))
                  + (torch.as_tensor(values[idx], dtype=dtype, device=device),)
                  for name, idx in zip(("train", "val", "test"), cut)}
        mean = float(values[cut[0]].mean())
        model = Factorization(int(users.max()) + 1, int(items.max()) + 1, 32, mean, dtype)

        def loss(step):
            u, i, r = splits["train"]
            return ((model(u, i) - r) ** 2).mean()

        @torch.no_grad()
        def evaluate():
            return {name: {"rmse": ((model(u, i) - r) ** 2).mean().sqrt().item(),
                           "mean_baseline_rmse": ((mean - r) ** 2).mean().sqrt().item()}
                    for name, (u, i, r) in splits.items()}

        return Problem(model, loss, evaluate)
