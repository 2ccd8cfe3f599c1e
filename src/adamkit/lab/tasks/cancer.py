"""``cancer``: logistic regression on scikit-learn's breast-cancer data.

569 tumours, 30 features standardized with the training split's mean and std; a fixed
stratified shuffle gives 341 train, 114 val and 114 test. Full-batch training of one
linear layer with a sigmoid output. The decay modes differ in what they leave: L1 drives
weights to (near) zero, L2 and decoupled decay shrink them all; ``sparsity`` (the fraction
of weights below 1% of the largest) and the weight norm show it.
"""

import numpy as np
import torch

from adamkit.lab.tasks.base import Problem, Task


class Cancer(Task):
    name = "cancer"
    summary = "breast-cancer diagnosis, logistic regression on 30 features"
    data_source = "scikit-learn's load_breast_cancer (569 samples, ships with the package): 341/114/114"
    models = ("logistic",)
    metric_text = "test error (fraction misclassified); also sparsity of the weights"
    primary = "error"
    baseline = "predicting the majority class: error 0.37"
    budget = 500
    quick_budget = 100
    evals = 20
    init = "zeros"
    nonlinearity = "sigmoid"
    lr = {"sgd": 0.5, "momentum": 0.1, "adam": 0.05}
    weight_decay = {"l2": 0.01, "l1": 0.01, "decoupled": 0.2, "independent": 0.01}

    def setup(self, config, dtype, device):
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split

        x, y = load_breast_cancer(return_X_y=True)
        x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=228, stratify=y, random_state=0)
        x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=114, stratify=y_rest,
                                                        random_state=0)
        mean, std = x_train.mean(0), x_train.std(0)

        def tensors(a, b):
            return (torch.as_tensor((a - mean) / std, dtype=dtype, device=device),
                    torch.as_tensor(b, dtype=dtype, device=device))

        splits = {"train": tensors(x_train, y_train), "val": tensors(x_val, y_val), "test": tensors(x_test, y_test)}
        model = torch.nn.Linear(30, 1, dtype=dtype)
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def loss(step):
            x, y = splits["train"]
            return bce(model(x)[:, 0], y)

        @torch.no_grad()
        def evaluate():
            out = {}
            for name, (x, y) in splits.items():
                logits = model(x)[:, 0]
                error = ((logits > 0).to(y.dtype) != y).double().mean().item()
                out[name] = {"error": error, "accuracy": 1 - error, "loss": bce(logits, y).item()}
            w = np.abs(model.weight.detach().double().cpu().numpy())
            out["model"] = {"sparsity": float((w < 0.01 * w.max()).mean()) if w.max() > 0 else 1.0}
            return out

        return Problem(model, loss, evaluate)
