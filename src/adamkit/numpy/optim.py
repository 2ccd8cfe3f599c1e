"""Stateful NumPy optimizers over lists of float arrays, updated in place.

They mirror torch.optim's shape: param groups (dicts with ``"params"`` and
per-group hyperparameters), ``state`` per parameter, ``state_dict()`` and
``load_state_dict()``. ``group["reference_lr"]`` is the rate at construction (or the
``reference_lr=`` given), so when a schedule changes ``group["lr"]`` the multiplier
``eta = lr / reference_lr`` (:func:`adamkit.rules.schedule_multiplier`) drives ``decay="independent"``.
"""

import copy

import numpy as np

from adamkit import _checks, rules


def _decay_terms(group):
    lr, wd = group["lr"], group["weight_decay"]
    eta = rules.schedule_multiplier(lr, group["reference_lr"])
    terms = rules.decay_terms(group["decay"], wd, lr, eta)
    if terms.shrink != 1:
        _checks.check_shrink(terms.shrink, lr, group["reference_lr"], wd)
    return terms._asdict()


class Optimizer:
    """Base class: param groups, per-parameter state and checkpoints."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # global parameter index -> dict of arrays and counters
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        arrays = group["params"]
        arrays = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
        for a in arrays:
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                raise TypeError(f"params: expected floating-point NumPy arrays, got {type(a).__name__}"
                                f"{'' if not isinstance(a, np.ndarray) else ' of dtype ' + str(a.dtype)}")
        seen = {id(a) for g in self.param_groups for a in g["params"]}
        ids = [id(a) for a in arrays]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("params: a parameter appears more than once; each array may be optimized once")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = arrays
        if group.get("reference_lr") is None:
            group["reference_lr"] = group["lr"]
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        raise NotImplementedError

    def _update(self, group, p, g, state):
        raise NotImplementedError

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, grads):
        """Update every parameter in place from ``grads``, one array (or None) per parameter."""
        params = self._params()
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"grads: expected {len(params)} gradients (one per parameter), got {len(grads)}")
        for p, g in zip(params, grads):
            if g is not None and np.shape(g) != p.shape:
                raise ValueError(f"grads: gradient of shape {np.shape(g)} for a parameter of shape {p.shape}")
        for group in self.param_groups:
            self._check(group)
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                g = grads[index]
                if g is not None:
                    self._update(group, p, np.asarray(g, dtype=p.dtype), self.state.setdefault(index, {}))
                index += 1

    def state_dict(self):
        groups, index = [], 0
        for group in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(saved)
        return {"state": copy.deepcopy(self.state), "param_groups": groups}

    def load_state_dict(self, state_dict):
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("state_dict: its param groups do not match this optimizer's in number or size")
        params = self._params()
        state = copy.deepcopy(state_dict["state"])
        for index, entry in state.items():
            for key, value in entry.items():
                if isinstance(value, np.ndarray) and value.shape != params[index].shape:
                    raise ValueError(f"state_dict: state[{index}][{key!r}] has shape {value.shape}, "
                                     f"parameter has shape {params[index].shape}")
        groups = []
        for group, new in zip(self.param_groups, saved):
            new = {k: copy.deepcopy(v) for k, v in new.items() if k != "params"}
            self._check(new)
            groups.append({**new, "params": group["params"]})
        self.param_groups = groups
        self.state = {int(k): {key: (v.astype(params[int(k)].dtype) if isinstance(v, np.ndarray) else v)
                               for key, v in entry.items()} for k, entry in state.items()}


class SGD(Optimizer):
    """Gradient descent with optional momentum, dampening and Nesterov, as torch.optim.SGD.

    ``decay`` picks the weight-decay mode (default ``"l2"``, torch's); see :mod:`adamkit.rules`.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, decay="l2", reference_lr=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, decay=decay, reference_lr=reference_lr))

    def _check(self, group):
        _checks.check_lr(group["lr"])
        _checks.check_sgd(group["momentum"], group["dampening"], group["nesterov"])
        _checks.check_nonnegative(group["weight_decay"], "weight_decay")
        _checks.check_decay(group["decay"])

    def _update(self, group, p, g, state):
        p[...], buf = rules.sgd(
            p, g, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
            **_decay_terms(group))
        if group["momentum"] != 0:
            state["momentum_buffer"] = buf.copy() if buf is g else buf


class Adam(Optimizer):
    """Adam (Kingma & Ba) with a weight-decay mode; default ``decay="l2"`` as torch.optim.Adam."""

    _default_decay = "l2"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decay=None, reference_lr=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decay=decay or self._default_decay, reference_lr=reference_lr))

    def _check(self, group):
        _checks.check_lr(group["lr"])
        _checks.check_betas(group["betas"])
        _checks.check_eps(group["eps"])
        _checks.check_nonnegative(group["weight_decay"], "weight_decay")
        _checks.check_decay(group["decay"])

    def _update(self, group, p, g, state):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        p[...], state["exp_avg"], state["exp_avg_sq"], vmax = rules.adam(
            p, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
            step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            amsgrad=group["amsgrad"], maximize=group["maximize"], **_decay_terms(group))
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = vmax


class AdamW(Adam):
    """Adam with decoupled weight decay; ``decay="independent"`` gives the paper's form."""

    _default_decay = "decoupled"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, decay=None, reference_lr=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decay=decay,
                         reference_lr=reference_lr)
