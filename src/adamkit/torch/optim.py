"""Drop-in replacements for torch.optim.SGD, Adam and AdamW.

Same signatures, defaults, state keys and results as torch.optim's, plus:

- ``decay=``: the weight-decay mode, one of ``"l2"``, ``"l1"``, ``"decoupled"``,
  ``"independent"`` (see :mod:`adamkit.rules`); per param group.
- ``impl=``: ``"auto"`` or a kernel name from :mod:`adamkit.torch.kernels`.

``"independent"`` decay uses ``eta_t = group["lr"] / group["initial_lr"]``; torch's
LR schedulers set ``initial_lr``, and without one ``eta_t = 1``.
"""

import torch

from adamkit import _checks, rules
from adamkit.torch import kernels

_STATE_DTYPES = (None, torch.float32, torch.bfloat16, torch.float16, torch.float64)
_TORCH_FLAGS = dict(foreach=None, maximize=False, capturable=False, differentiable=False, fused=None)


def _plain(x):
    """Python number for a one-element tensor hyperparameter (reference and foreach paths)."""
    return x.item() if isinstance(x, torch.Tensor) else x


def _eta(group, lr):
    lr0 = group.get("initial_lr")
    if lr0 is None or _plain(lr0) == 0:
        return 1.0
    return lr / lr0


class _Base(torch.optim.Optimizer):
    """Shared machinery: validation before any change, impl selection, torch flags."""

    def __init__(self, params, defaults, *, impl, foreach, fused, differentiable):
        if differentiable:
            raise NotImplementedError("differentiable=True is not supported by adamkit; use torch.optim")
        if foreach and fused:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if impl == "auto" and foreach is False and not fused:
            impl = "reference"
        elif impl == "auto" and (foreach or fused):
            impl = "fused" if fused else "foreach"
        defaults["impl"] = impl
        self._check_group(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        params = param_group["params"]
        if not isinstance(params, (torch.Tensor, set)):  # torch raises its own TypeError for sets
            params = list(params)
            param_group = {**param_group, "params": params}
            tensors = [p[1] if isinstance(p, tuple) else p for p in params]  # named parameters
            if len({id(p) for p in tensors}) != len(tensors):
                raise ValueError("params: a parameter appears more than once in a param group; "
                                 "each tensor may be optimized once")
        self._check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in _TORCH_FLAGS.items():
                group.setdefault(key, value)
            group.setdefault("decay", self._default_decay(group))
            group.setdefault("impl", "auto")

    def _default_decay(self, group):
        return "l2"

    def _check_group(self, group):
        _checks.check_lr(group["lr"])
        _checks.check_nonnegative(group["weight_decay"], "weight_decay")
        _checks.check_decay(group["decay"])
        _checks.check_choice(group["impl"], "impl", kernels.IMPLS)

    # torch.optim.Adam raises RuntimeError for sparse gradients; torch.optim.SGD accepts them.
    _sparse_error = ValueError

    def _grads(self, group):
        """Params with a gradient and their gradients; sparse gradients are refused."""
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise self._sparse_error(f"{type(self).__name__} does not support sparse gradients "
                                         "(p.grad.is_sparse); use dense gradients or torch.optim.SparseAdam")
        return params, [p.grad for p in params]

    def _impl(self, group, params):
        return kernels.resolve(group["impl"], params)

    def _decay_terms(self, group, impl):
        """``lr`` and ``(l2, l1, shrink)``; tensors stay on the device for Triton (no host sync)."""
        lr = group["lr"] if impl == "triton" else _plain(group["lr"])
        wd = _plain(group["weight_decay"])
        return lr, rules.decay_terms(group["decay"], wd, lr, _eta(group, lr))

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        for group in self.param_groups:  # every check passes before anything changes
            self._check_group(group)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:  # gradients and implementations, also before any change
            params, grads = self._grads(group)
            if params:
                work.append((group, params, grads, self._impl(group, params)))
        for group, params, grads, impl in work:
            self._update_group(group, params, grads, impl)
        return loss


class SGD(_Base):
    """torch.optim.SGD with ``decay=`` and ``impl=``; default ``decay="l2"`` (torch's)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, decay="l2", impl="auto"):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused, decay=decay)
        super().__init__(params, defaults, impl=impl, foreach=foreach, fused=fused,
                         differentiable=differentiable)

    def _check_group(self, group):
        super()._check_group(group)
        _checks.check_sgd(group["momentum"], group["dampening"], group["nesterov"])

    def _update_group(self, group, params, grads, impl):
        lr, (l2, l1, shrink) = self._decay_terms(group, "sgd")  # SGD kernels take Python scalars
        momentum = group["momentum"]
        bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum else [None] * len(params)
        bufs = kernels.get(impl).sgd(
            params, grads, bufs, lr=lr, momentum=momentum, dampening=group["dampening"],
            nesterov=group["nesterov"], l2=l2, l1=l1, shrink=shrink, maximize=group["maximize"])
        if momentum:
            for p, buf in zip(params, bufs):
                self.state[p]["momentum_buffer"] = buf


class Adam(_Base):
    """torch.optim.Adam with ``decay=`` and ``impl=``.

    The default ``decay`` is ``"l2"`` (coupled, as torch.optim.Adam), or
    ``"decoupled"`` when ``decoupled_weight_decay=True``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False, decay=None,
                 impl="auto", state_dtype=None):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        _checks.check_betas(betas)
        decay = decay or ("decoupled" if decoupled_weight_decay else "l2")
        defaults = dict(lr=lr, betas=tuple(_plain(b) for b in betas), eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decay == "decoupled", decay=decay,
                        state_dtype=state_dtype)
        super().__init__(params, defaults, impl=impl, foreach=foreach, fused=fused,
                         differentiable=differentiable)

    _sparse_error = RuntimeError

    def _default_decay(self, group):
        return "decoupled" if group.get("decoupled_weight_decay") else "l2"

    def _check_group(self, group):
        super()._check_group(group)
        _checks.check_betas(group["betas"])
        _checks.check_eps(group["eps"])
        _checks.check_choice(group.get("state_dtype"), "state_dtype", _STATE_DTYPES)

    def _impl(self, group, params):
        impl = super()._impl(group, params)
        dtype = group.get("state_dtype")
        if dtype is None or all(p.dtype == dtype for p in params) or impl in ("reference", "triton"):
            return impl
        if group["impl"] == "auto":
            return "reference"
        raise ValueError(f"impl={impl!r} keeps states in the param dtype; state_dtype={dtype} "
                         "needs impl='triton' or 'reference'")

    def state_dict(self):
        # Keep torch's flag in step with the mode so the dict loads into torch.optim.
        for group in self.param_groups:
            group["decoupled_weight_decay"] = group["decay"] == "decoupled"
        return super().state_dict()

    def _state(self, p, group, step_device):
        state = self.state[p]
        dtype = group.get("state_dtype") or p.dtype
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32, device=step_device)
            state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        elif state["step"].device != step_device:  # e.g. a checkpoint from another impl
            state["step"] = state["step"].to(step_device)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        return state

    def _update_group(self, group, params, grads, impl):
        kernel = kernels.get(impl)
        lr, (l2, l1, shrink) = self._decay_terms(group, impl)
        amsgrad = group["amsgrad"]
        on_device = getattr(kernel, "STEP_ON_DEVICE", False) or group["capturable"]
        cpu = torch.device("cpu")
        states = [self._state(p, group, p.device if on_device else cpu) for p in params]
        beta1, beta2 = group["betas"]
        kernel.adam(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            [s["max_exp_avg_sq"] for s in states] if amsgrad else [], [s["step"] for s in states],
            lr=lr, beta1=beta1, beta2=beta2, eps=group["eps"], l2=l2, l1=l1, shrink=shrink,
            amsgrad=amsgrad, maximize=group["maximize"])


class AdamW(Adam):
    """torch.optim.AdamW with ``decay=`` and ``impl=``: default ``decay="decoupled"``,
    ``weight_decay=1e-2``. ``decay="independent"`` is the paper's fully decoupled form."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, decay="decoupled", impl="auto", state_dtype=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decay=decay, impl=impl, state_dtype=state_dtype)

    def _default_decay(self, group):
        return "decoupled"
