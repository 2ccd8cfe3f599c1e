"""Drop-in replacements for torch.optim.SGD, Adam and AdamW, and the Adam variants StableAdamW
and AdEMAMix in the same form.

Same signatures, defaults, state keys, checkpoints and results as torch.optim's, plus
``decay=`` (the weight-decay mode, see :data:`adamkit.rules.DECAY_MODES`), ``impl=`` (which
kernel updates the tensors, see :mod:`adamkit.torch.kernels`), ``state_dtype=`` and
``reference_lr=``. The shell validates every group before anything changes, increments
``step`` once, asks :func:`adamkit.torch.kernels.plan` which kernel takes which tensor, and
hands each kernel its share with one bundle of scalars. :meth:`explain` shows that plan.
"""

import operator
import warnings

import torch
from torch.optim.optimizer import _use_grad_for_differentiable

from adamkit import _checks, quant, rules
from adamkit.torch import kernels
from adamkit.torch.kernels import Rounding
from adamkit.torch.kernels import rounding as rnd

_STATE_DTYPES = (None, torch.float32, torch.bfloat16, torch.float16, torch.float64, *rules.STATE_FORMATS)
# Group keys adamkit adds; they travel in state_dicts (torch.optim ignores them).
_SCALES = "_absmax"  # a quantized moment ``name`` keeps its per-block scales under ``name + _SCALES``
_OWN_KEYS = ("decay", "impl", "state_dtype", "reference_lr", "rounding", "rounding_seed")

_ARGS_COMMON = """
    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of param-group dicts
            (:func:`adamkit.torch.param_groups` builds the usual decay / no-decay split).
        lr (float or Tensor): learning rate ``lr_t``; a one-element tensor is allowed.
        weight_decay (float): ``wd``, applied as ``decay`` says."""

_ARGS_OWN = """
        decay (str): the weight-decay mode, one of ``"l2"`` (``g += wd*p``), ``"l1"``
            (``g += wd*sign(p)``), ``"decoupled"`` (``p *= 1 - lr_t*wd``, torch.optim.AdamW) or
            ``"independent"`` (``p *= 1 - eta_t*wd``, Loshchilov & Hutter) or ``"corrected"``
            (``p *= 1 - lr_t*eta_t*wd``, AdamC: torch's form with wd following the schedule).
        reference_lr (float): the rate ``eta_t = lr_t / reference_lr`` is measured against for
            the modes that read it (``"independent"``, ``"corrected"``); default: ``lr`` as constructed, per group
            (see :func:`adamkit.rules.schedule_multiplier`).
        impl (str): ``"auto"`` (default), ``"reference"``, ``"foreach"``, ``"fused"``, ``"cpu"``
            or ``"triton"``; ``explain()`` shows which kernel updates each tensor and why.
        rounding (str): how results reach bf16/fp16 params: ``"nearest"`` (default), ``"kahan"``
            (state ``kahan_comp`` keeps what rounding drops) or ``"stochastic"`` (unbiased,
            reproducible from ``rounding_seed``, default ``torch.initial_seed()``); see
            :mod:`adamkit.torch.kernels.rounding`.
        foreach, fused, differentiable, maximize: as in torch.optim (``foreach=False`` is the
            for-loop: the reference kernel; ``differentiable=True`` lets autograd through it)."""


def _plain(x):
    """Python number for a one-element tensor hyperparameter."""
    return x.item() if isinstance(x, torch.Tensor) else x


_PLAIN = (torch.Tensor, torch.nn.Parameter)
_DTYPE, _DEVICE, _IS_SPARSE = (operator.attrgetter(name) for name in ("dtype", "device", "is_sparse"))
_STRIDE = operator.methodcaller("stride")
_CPU = torch.device("cpu")


def _kernel_view(t):
    """The plain real tensor a kernel updates: a DTensor's local shard, a complex tensor's real pairs."""
    if t is None:
        return None
    if type(t) not in _PLAIN and hasattr(t, "to_local") and hasattr(t, "device_mesh"):  # DTensor: shard-local math
        t = t.to_local()
    return torch.view_as_real(t) if t.is_complex() else t


def _views(tensors, plain):
    """:func:`_kernel_view` of each tensor; the list itself where the plan found only plain tensors."""
    return tensors if plain else [_kernel_view(t) for t in tensors]


def _zero_moment(p, slot, fmt, dtype):
    """A slot's first value: zeros in ``dtype`` (None: the param's), or under a quantized format
    ``fmt`` flat uint8 codes plus float32 scales (key ``name + "_absmax"``) where the format
    quantizes the tensor, and plain moments (float32, or the param's dtype) where it does not."""
    if fmt is None or "quantized" not in slot.formats:
        return {slot.name: torch.zeros_like(p, dtype=None if isinstance(dtype, str) else dtype or p.dtype,
                                            memory_format=torch.preserve_format)}
    view = _kernel_view(p)
    if fmt.quantizes(view.numel()):
        codes, scales = quant.zeros(view.shape, fmt, like=view)
        return {slot.name: codes, slot.name + _SCALES: scales}
    kept = torch.float32 if fmt.fallback == "float32" else p.dtype
    return {slot.name: torch.zeros_like(p, dtype=kept, memory_format=torch.preserve_format)}


def _state_format(p, state_dtype):
    """How a param's moments are kept, for :meth:`explain`: a dtype, or a quantized format's name
    (with the dtype it keeps instead for a tensor it does not quantize)."""
    fmt = rules.STATE_FORMATS.get(state_dtype) if isinstance(state_dtype, str) else None
    if fmt is None:
        return str(state_dtype or p.dtype).removeprefix("torch.")
    if fmt.quantizes(_kernel_view(p).numel()):
        return fmt.name
    kept = "float32" if fmt.fallback == "float32" else str(p.dtype).removeprefix("torch.")
    return f"{kept} ({fmt.name}: too small)" if _kernel_view(p).numel() < fmt.min_size else \
        f"{kept} ({fmt.name}: size not a multiple of {fmt.divides})"


class _Choices(list):
    """One group's plan (a :class:`~adamkit.torch.kernels.Choice` per tensor) and what each step reuses."""

    def __init__(self, choices, plain):
        super().__init__(choices)
        self.plain = plain  # no complex or DTensor params: kernels take the tensors as they are
        self.split = kernels.split(choices)
        self.step_on_device = [kernels.KERNELS[c.kernel].step_on_device for c in choices]
        self.one_kernel = len(self.split) == 1


def _like(p, view):
    """Undo :func:`_kernel_view` for a tensor a kernel created (a new momentum buffer)."""
    if p.is_complex() and not view.is_complex():
        view = torch.view_as_complex(view)
    if hasattr(p, "device_mesh") and not hasattr(view, "device_mesh"):
        from torch.distributed.tensor import DTensor

        view = DTensor.from_local(view, p.device_mesh, p.placements, run_check=False)
    return view


def _rounding_defaults(rounding, rounding_seed):
    """``rounding`` and its seed (``torch.initial_seed()`` by default, so ``torch.manual_seed`` sets it)."""
    _checks.check_choice(rounding, "rounding", rnd.ROUNDINGS)
    return dict(rounding=rounding, rounding_seed=torch.initial_seed() if rounding_seed is None else int(rounding_seed))


def _check_moments(group):
    """What Adam-like groups share: two betas, eps and the state's storage."""
    _checks.check_betas(group["betas"])
    _checks.check_eps(group["eps"])
    _checks.check_choice(group.get("state_dtype"), "state_dtype", _STATE_DTYPES)


class Plan(list):
    """Rows of :meth:`explain`: which kernel updates each tensor, and why."""

    COLUMNS = ("group", "param", "shape", "dtype", "state", "device", "impl", "step_device", "rounding", "reason")

    def __str__(self):
        rows = [self.COLUMNS] + [tuple(str(r[c]) for c in self.COLUMNS) for r in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


class _Base(torch.optim.Optimizer):
    """Shared machinery: validation before any change, the plan, state, checkpoints."""

    _algorithm = "adam"  # its record in adamkit.rules.ALGORITHMS
    _torch_flags = dict(foreach=None, maximize=False, differentiable=False, fused=None)
    _sparse_error = ValueError

    def __init__(self, params, defaults):
        if defaults.get("fused") and defaults.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if defaults.get("fused") and defaults.get("differentiable"):
            raise RuntimeError("`fused` does not support `differentiable`")
        self._check_group(defaults)
        super().__init__(params, defaults)
        if defaults.get("fused"):
            self._step_supports_amp_scaling = True  # GradScaler hands us grad_scale and found_inf

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["reference_lr"] is None:  # default: the rate this group starts with
            group["reference_lr"] = _plain(group["lr"])
        try:  # what no kernel can run is refused now, not at the first step (meta params: once materialized)
            self._check_group(group)
            params = [p for p in group["params"] if kernels.device_type(p) != "meta"]
            self._plan(group, params, params)  # grads in their params' layout, as explain() assumes
        except Exception:
            self.param_groups.pop()
            raise

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self._torch_flags.items():
                group.setdefault(key, value)
            group.setdefault("impl", self.defaults.get("impl", "auto"))
            group.setdefault("reference_lr", _plain(group["lr"]))
            for p in group["params"]:  # a checkpoint may hold ``step`` as a Python number
                state = self.state.get(p)
                if state and "step" in state and not torch.is_tensor(state["step"]):
                    state["step"] = torch.tensor(float(state["step"]), dtype=torch.float32)

    def _check_group(self, group):
        _checks.check_lr(group["lr"])
        _checks.check_nonnegative(group["weight_decay"], "weight_decay")
        rules.check_decay(group["decay"])
        _checks.check_choice(group["impl"], "impl", kernels.IMPLS)
        _checks.check_choice(group.get("rounding", "nearest"), "rounding", rnd.ROUNDINGS)
        if group.get("reference_lr") is not None:
            _checks.check_lr(group["reference_lr"], "reference_lr")

    def _requested(self, group):
        return kernels.requested(group["impl"], foreach=group.get("foreach"), fused=group.get("fused"),
                                 differentiable=group.get("differentiable", False))

    def _scalar_bundle(self, group, lr, terms):
        """The algorithm record's scalars for this group (see :data:`adamkit.rules.ALGORITHMS`)."""
        raise NotImplementedError

    def _grads(self, group):
        """Params with a gradient and their gradients; sparse gradients only where the rule takes them."""
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse and self._sparse_error is not None:
                raise self._sparse_error(f"{type(self).__name__} does not support sparse gradients "
                                         "(p.grad.is_sparse); use dense gradients or torch.optim.SparseAdam")
            if group.get("fused") and not (p.device.type in kernels.KERNELS["fused"].devices
                                           and torch.is_floating_point(p)):
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                                   f"supported devices: {sorted(kernels.KERNELS['fused'].devices)} but "
                                   f"{p.dtype} and {p.device.type}")
        return params, [p.grad for p in params]

    def _plan(self, group, params, grads):
        """One kernel per tensor (see :func:`adamkit.torch.kernels.plan`); raises before any change.

        Cached, keyed by everything the plan reads that can change between steps: the group's
        settings, each param's identity, dtype, device and strides, each grad's layout and dtype.
        States are created in their param's layout; ``load_state_dict`` clears the cache."""
        requested, l1 = self._requested(group), group["decay"] == "l1" and group["weight_decay"] != 0
        sparse = tuple(map(_IS_SPARSE, grads))
        grad_strides = tuple(g.is_sparse or g.stride() for g in grads) if any(sparse) else tuple(map(_STRIDE, grads))
        key = (requested, l1, group.get("state_dtype"), group.get("rounding", "nearest"), tuple(map(id, params)),
               tuple(map(_DTYPE, params)), tuple(map(_DEVICE, params)), tuple(map(_STRIDE, params)), sparse,
               tuple(map(_DTYPE, grads)), grad_strides)  # map: one C loop per attribute, not a tuple per tensor
        cache = self.__dict__.setdefault("_plans", {})
        if key not in cache:
            if len(cache) >= 8:  # e.g. params that change which of them have gradients
                cache.clear()
            cache[key] = self._new_plan(group, params, grads, requested, l1)
        return cache[key]

    def _new_plan(self, group, params, grads, requested, l1):
        views = [_kernel_view(p) for p in params]
        grad_views = [g if g.is_sparse else _kernel_view(g) for g in grads]
        others = [[_kernel_view(t) for t in self._state_tensors(p)] for p in params]
        plain = all(v is p for v, p in zip(views, params))
        return _Choices(kernels.plan(self._algorithm, requested, views, grad_views, l1=l1,
                                     state_dtype=group.get("state_dtype"), others=others,
                                     rounding=group.get("rounding", "nearest"),
                                     autograd=group.get("differentiable", False)), plain)

    def _state_tensors(self, p):
        return [t for key, t in self.state.get(p, {}).items() if key != "step" and torch.is_tensor(t)]

    def _scalars(self, group, device_lr=False):
        """``lr`` and the decay mode's ``(l2, l1, shrink)``; a tensor lr stays on the device if asked."""
        graph = group.get("differentiable", False)  # tensor hyperparameters stay tensors: autograd reaches them
        lr = group["lr"] if device_lr or graph else _plain(group["lr"])
        wd = group["weight_decay"] if graph else _plain(group["weight_decay"])
        reference = group["reference_lr"]
        eta = rules.schedule_multiplier(lr, reference)
        terms = rules.decay_terms(group["decay"], wd, lr, eta)
        warning = rules.decay_warning(group["decay"], terms, lr=lr, weight_decay=wd, reference_lr=reference, eta=eta)
        if warning:  # computed as written, as torch.optim.AdamW does; said once
            self._warn_once(warning.message, key=warning.kind)
        return lr, terms

    def _warn_once(self, message, key=None):
        warned = self.__dict__.setdefault("_warned", set())
        if (key or message) not in warned:
            warned.add(key or message)
            warnings.warn(message, RuntimeWarning, stacklevel=7)  # the caller of step()

    def _rounding(self, group, params, states):
        """The :class:`Rounding` bundle for kernels that offer it; None where nothing rounds specially."""
        mode = group.get("rounding", "nearest")
        if mode == "nearest" or not any(rnd.applies(mode, p.dtype) for p in params):
            return None
        keys = self.__dict__.get("_keys")
        if keys is None or any(p not in keys for p in params):
            keys = self._keys = {p: i for i, p in enumerate(q for g in self.param_groups for q in g["params"])}
        return Rounding(mode, group["rounding_seed"], [keys[p] for p in params], [s.get("step") for s in states],
                        [_kernel_view(s["kahan_comp"]) if "kahan_comp" in s else None for s in states])

    def _rounding_state(self, p, group, state=None):
        state = self.state[p] if state is None else state
        mode = group.get("rounding", "nearest")
        if mode == "kahan" and p.dtype in rnd.HALF and "kahan_comp" not in state:
            state["kahan_comp"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _amp(self):
        """GradScaler's fused protocol: ``(grad_scale, found_inf)`` or ``(None, None)``."""
        return getattr(self, "grad_scale", None), getattr(self, "found_inf", None)

    def _init_group(self, group, params, on_device, states, h):
        """Create missing state (the record's slots; ``step`` placed where each tensor's kernel reads
        it). torch.compile runs a method of this name eagerly, outside the graph, as it does torch.optim's."""
        record = rules.ALGORITHMS[self._algorithm]
        dtype, on_host = group.get("state_dtype"), not group.get("capturable", False)
        counts = record.counts_steps or group.get("rounding") == "stochastic"  # the random stream reads a count
        zeros = [slot for slot in record.kept(h) if not slot.lazy]
        fmt = rules.STATE_FORMATS.get(dtype) if isinstance(dtype, str) else None
        kahan = group.get("rounding") == "kahan"
        for p, device, state in zip(params, on_device, states):
            if counts:
                step = state.get("step")
                step_device = _CPU if on_host and not device else p.device
                if step is None:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32, device=step_device)
                elif step.dtype != torch.float32 or step.device != step_device:
                    state["step"] = step.to(step_device, torch.float32)  # a checkpoint, or another kernel's
            for slot in zeros:
                if slot.name not in state:
                    state.update(_zero_moment(p, slot, fmt, dtype))
            if kahan:
                self._rounding_state(p, group, state)

    def _check_precision(self, group, params, choices):
        """Warn, once, about values the dtypes in play cannot hold (when state is first created)."""

    def _update_group(self, group, params, grads, choices):
        """One step of the group's tensors: state, ``step`` counted once, then :func:`kernels.run`."""
        record = rules.ALGORITHMS[self._algorithm]
        grads, grad_scale, found_inf, skip = kernels.unscale(choices.split, grads, *self._amp())
        if skip:
            return
        h = self._scalar_bundle(group, *self._scalars(group))
        keeps = record.counts_steps or record.kept(h) or group.get("rounding", "nearest") != "nearest"
        states = [self.state[p] for p in params] if keeps else [{} for _ in params]  # as torch: no empty states
        if not all(states):  # new state: check once what its dtypes can hold
            self._check_precision(group, params, choices)
        self._init_group(group, params, choices.step_on_device, states, h)
        steps = [s.get("step") for s in states]
        if steps and steps[0] is not None:
            kernels.advance(steps)
        plain = choices.plain
        slots = [_views([s.get(slot.name) for s in states], plain) for slot in record.slots]
        if isinstance(group.get("state_dtype"), str):  # quantized moments reach kernels as codes and scales together
            fmt, shapes = rules.STATE_FORMATS[group["state_dtype"]], [tuple(v.shape) for v in _views(params, plain)]
            slots = [[rules.Quantized(v, s[slot.name + _SCALES], fmt, slot.signed, shape)
                      if slot.name + _SCALES in s else v for v, s, shape in zip(values, states, shapes)]
                     for slot, values in zip(record.slots, slots)]
        device_h = None if all(not kernels.KERNELS[n].device_lr for n in choices.split) else \
            self._scalar_bundle(group, *self._scalars(group, device_lr=True))

        def rounding(idx):
            return self._rounding(group, [params[i] for i in idx], [states[i] for i in idx])

        created = kernels.run(self._algorithm, choices, _views(params, plain), _views(grads, plain), slots, steps,
                              lambda kernel: device_h if kernel.device_lr else h,
                              rounding if group.get("rounding", "nearest") != "nearest" else None,
                              grad_scale, found_inf)
        for slot, new in zip((s for s in record.slots if s.lazy), created):
            if slot.kept(h):  # kernels update slots in place, or hand back new ones (first step, sparse)
                for p, state, passed, returned in zip(params, states, slots[record.slots.index(slot)], new):
                    state[slot.name] = state.get(slot.name) if returned is passed else _like(p, returned)

    # torch's own wrapper: grad mode from ``differentiable``, and the graph breaks around the
    # step that let torch.compile see an in-place inference graph.
    @_use_grad_for_differentiable
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        for group in self.param_groups:  # every check passes before anything changes
            self._check_group(group)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:  # gradients and the plan, also before any change
            params, grads = self._grads(group)
            if params:
                work.append((group, params, grads, self._plan(group, params, grads)))
        for group, params, grads, choices in work:
            self._update_group(group, params, grads, choices)
        return loss

    def explain(self):
        """Which kernel updates each tensor, and why: a :class:`Plan` of rows (print it for a table).

        Tensors without a gradient yet are planned as if their gradient had their layout.
        ``rounding`` is how results reach the param: the group's mode for bf16/fp16 params,
        ``nearest`` for wider ones (whose arithmetic is already in their dtype).

        >>> import torch, adamkit.torch as ak
        >>> print(ak.AdamW([torch.zeros(3, 2)], decay="l1").explain())  # doctest: +ELLIPSIS
        group  param  shape   dtype          state    device  impl  step_device  rounding  reason
        0      0      (3, 2)  torch.float32  float32  cpu     cpu   cpu          nearest   the C kernel: one pass, ...
        """
        rows, index = Plan(), 0
        for g_index, group in enumerate(self.param_groups):
            params = group["params"]
            grads = [p.grad if p.grad is not None else p for p in params]
            mode = group.get("rounding", "nearest")
            for p, choice in zip(params, self._plan(group, params, grads)):
                kernel = kernels.KERNELS[choice.kernel]
                on_device = kernel.step_on_device or group.get("capturable")
                rows.append(dict(group=g_index, param=index, shape=tuple(p.shape), dtype=p.dtype,
                                 state=_state_format(p, group.get("state_dtype")), device=kernels.device_type(p),
                                 impl=choice.kernel,
                                 step_device=kernels.device_type(p) if on_device else "cpu",
                                 rounding=mode if rnd.applies(mode, p.dtype) else "nearest", reason=choice.reason))
                index += 1
        return rows

    def state_dict(self):
        """torch's state_dict, loadable into torch.optim: an ``"independent"`` group carries the
        torch-equivalent ``weight_decay = wd / reference_lr`` (exact at any schedule, since
        ``eta_t * wd = lr_t * wd / reference_lr``) and its own ``wd`` under ``independent_weight_decay``."""
        state = super().state_dict()
        for group in state["param_groups"]:
            if group["decay"] == "independent":
                group["independent_weight_decay"] = group["weight_decay"]
                group["weight_decay"] = group["weight_decay"] / group["reference_lr"]
        return state

    def load_state_dict(self, state_dict):
        """As torch's, plus: fields torch lacks keep what the constructor set unless the checkpoint
        carries them, the decay mode survives, and states kept in their own dtype (``state_dtype``)
        are not cast to the param's."""
        own = [{k: g[k] for k in _OWN_KEYS if k in g} for g in self.param_groups]
        self.__dict__.pop("_plans", None)  # states arrive in the checkpoint's layouts
        super().load_state_dict(state_dict)
        for group, mine, saved in zip(self.param_groups, own, state_dict["param_groups"]):
            for key in mine.keys() - saved.keys():
                group[key] = mine[key]
            group.pop("independent_weight_decay", None)
            if saved.get("decay") == "independent":
                group["weight_decay"] = saved.get("independent_weight_decay",
                                                  saved["weight_decay"] * saved["reference_lr"])
            self._adopt_saved_decay(group, saved, mine)
            if "decay" not in saved and group["decay"] == "independent":  # torch's lr-scaled wd, converted
                group["weight_decay"] = saved["weight_decay"] * group["reference_lr"]
            self._check_group(group)
            self._restore_state_dtype(group, [state_dict["state"].get(i) for i in saved["params"]])

    def _adopt_saved_decay(self, group, saved, mine):
        """A checkpoint from torch.optim carries its mode only as a flag (see Adam)."""
        if "decay" not in saved:
            group["decay"] = mine["decay"]

    def _restore_state_dtype(self, group, saved_states):
        """torch's loader casts every state tensor to a float param's dtype; take the saved values
        again (a quantized format's codes, scales and unquantized moments as saved)."""
        dtype = group.get("state_dtype")
        for p, saved in zip(group["params"], saved_states):
            if dtype is None or not saved:
                continue
            slots = {s.name for s in rules.ALGORITHMS[self._algorithm].slots if {"float", "quantized"} & set(s.formats)}
            for key in saved.keys() & (slots | {name + _SCALES for name in slots}):
                self.state[p][key] = saved[key].to(device=p.device, dtype=None if isinstance(dtype, str) else dtype,
                                                   copy=True)


class SGD(_Base):
    __doc__ = f"""torch.optim.SGD with weight-decay modes and a choice of kernel.

    .. math::
        d = g + \\text{{coupled decay}}(p), \\quad p \\leftarrow s\\,p, \\quad
        b = \\mu b + (1 - \\tau) d \\ (b = d \\text{{ at first}}), \\quad
        p \\leftarrow p - \\text{{lr}} \\cdot (d + \\mu b \\text{{ if nesterov else }} b)
    {_ARGS_COMMON}
        momentum (float): ``mu``; dampening (float): ``tau``; nesterov (bool): Nesterov momentum.{_ARGS_OWN}

    Default ``decay="l2"``, torch's. Sparse gradients are taken (reference kernel), as torch's.
    """

    _algorithm = "sgd"
    _sparse_error = None

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, decay="l2", impl="auto", reference_lr=None, rounding="nearest",
                 rounding_seed=None):
        _checks.check_lr(lr)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused, decay=decay, impl=impl,
                        reference_lr=reference_lr, **_rounding_defaults(rounding, rounding_seed))
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _checks.check_sgd(group["momentum"], group["dampening"], group["nesterov"])

    def _scalar_bundle(self, group, lr, terms):
        return rules.SGDScalars(lr, group["momentum"], group["dampening"], group["nesterov"], *terms,
                                group["maximize"])



class Adam(_Base):
    __doc__ = f"""torch.optim.Adam with weight-decay modes, a choice of kernel and a state dtype.

    .. math::
        g = g + \\text{{coupled decay}}(p), \\quad p \\leftarrow s\\,p, \\quad
        m = \\beta_1 m + (1-\\beta_1) g, \\quad v = \\beta_2 v + (1-\\beta_2) g^2, \\quad
        p \\leftarrow p - \\text{{lr}} \\, \\frac{{m/(1-\\beta_1^t)}}{{\\sqrt{{v/(1-\\beta_2^t)}} + \\epsilon}}
    {_ARGS_COMMON}
        betas (tuple): ``(beta1, beta2)``; eps (float): added to the bias-corrected ``sqrt(v)``.
        amsgrad (bool): divide by ``sqrt(max(v))`` (state ``max_exp_avg_sq``).
        decoupled_weight_decay (bool): torch's flag; ``True`` means ``decay="decoupled"``.
        capturable (bool): keep ``step`` on the param's device (CUDA graphs).
        state_dtype (torch.dtype or str): dtype of ``exp_avg``/``exp_avg_sq`` (e.g. fp32 for bf16
            params; default: the param's), or a quantized format of :data:`adamkit.rules.STATE_FORMATS`:
            ``"8bit"`` (bitsandbytes' ``AdamW8bit``) or ``"4bit"`` (torchao's ``AdamW4bit``). A
            quantized moment is kept as flat uint8 codes under its name plus float32 scales, one per
            block, under ``name + "_absmax"``; tensors the format leaves alone (under 4,096
            elements) keep plain moments. Only the reference kernel takes them (see ``explain()``).{_ARGS_OWN}

    Default ``decay="l2"``: coupled, as torch.optim.Adam.
    """

    _torch_flags = dict(foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                        amsgrad=False)
    _sparse_error = RuntimeError  # torch.optim.Adam's type

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False, decay=None,
                 impl="auto", state_dtype=None, reference_lr=None, rounding="nearest", rounding_seed=None):
        # torch.optim's construction checks, in its order and with its messages.
        if isinstance(lr, torch.Tensor) and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        _checks.check_lr(lr)
        _checks.check_betas(betas)
        if sum(isinstance(b, torch.Tensor) for b in betas) == 1:
            raise ValueError("betas must be either both floats or both Tensors")
        for i, b in enumerate(betas):
            if isinstance(b, torch.Tensor) and foreach and not capturable:
                raise ValueError(f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True")
        decay = decay or ("decoupled" if decoupled_weight_decay else "l2")
        defaults = dict(lr=lr, betas=tuple(betas) if differentiable else tuple(_plain(b) for b in betas), eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=rules.DECAY_MODES[decay].torch_decoupled
                        if decay in rules.DECAY_MODES else False, decay=decay, impl=impl,
                        state_dtype=state_dtype, reference_lr=reference_lr,
                        **_rounding_defaults(rounding, rounding_seed))
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_moments(group)

    def _scalar_bundle(self, group, lr, terms):
        beta1, beta2 = group["betas"]
        return rules.AdamScalars(lr, beta1, beta2, group["eps"], *terms, group["amsgrad"], group["maximize"])

    def _adopt_saved_decay(self, group, saved, mine):
        if "decay" not in saved:  # torch.optim's checkpoint: its flag says coupled or decoupled
            flag = bool(saved.get("decoupled_weight_decay", False))
            keep = rules.DECAY_MODES[mine["decay"]].torch_decoupled == flag
            group["decay"] = mine["decay"] if keep else ("decoupled" if flag else "l2")
        group["decoupled_weight_decay"] = rules.DECAY_MODES[group["decay"]].torch_decoupled

    def state_dict(self):
        # Keep torch's flag in step with the mode so the dict loads into torch.optim.
        for group in self.param_groups:
            mode = rules.DECAY_MODES.get(group["decay"])
            if mode:  # an invalid mode set by hand is reported by step(), not here
                group["decoupled_weight_decay"] = mode.torch_decoupled
        return super().state_dict()

    def _check_precision(self, group, params, choices):
        """Warn, once, about values the dtypes in play cannot hold."""
        state_dtype = group.get("state_dtype")
        dtypes = {state_dtype or p.dtype for p in params} & set(rnd.HALF)
        for dtype in dtypes:  # moments stored in half precision
            for name, beta in zip(("beta1", "beta2"), group["betas"]):
                if torch.tensor(beta, dtype=dtype).item() == 1.0:
                    self._warn_once(f"{name}={beta} rounds to 1.0 in {dtype}, the dtype of the moments: they stop "
                                    "decaying; keep the moments in float32 (state_dtype=torch.float32)")
        for p, choice in zip(params, choices):  # kernels whose arithmetic runs in the param dtype
            in_param_dtype = kernels.KERNELS[choice.kernel].math == "param"
            if in_param_dtype and torch.tensor(group["eps"], dtype=p.dtype).item() == 0 < group["eps"]:
                self._warn_once(f"eps={group['eps']} rounds to 0 in {p.dtype}, the dtype impl={choice.kernel!r} "
                                "computes in: a zero second moment divides by zero; use impl='auto' or a larger eps")
        if group.get("rounding", "nearest") == "nearest":
            half = [p for p in params if p.dtype in rnd.HALF and p.numel() and p.device.type != "meta"]
            if half:
                typical = torch.cat([p.detach().abs().flatten()[:4096].float() for p in half]).median().item()
                lr = _plain(group["lr"])
                # Adam moves a weight by about lr; below a quarter ulp of a typical weight it rounds away
                if 0 < lr < typical * torch.finfo(half[0].dtype).eps / 4:
                    self._warn_once(f"lr={lr:.3g} is below what a {half[0].dtype} weight of typical magnitude "
                                    f"{typical:.3g} can register under round-to-nearest: most updates are lost; "
                                    "pass rounding='kahan' or 'stochastic'", key="lr")



class AdamW(Adam):
    __doc__ = f"""torch.optim.AdamW with weight-decay modes, a choice of kernel and a state dtype.

    Default ``decay="decoupled"``, ``weight_decay=1e-2`` (torch's): ``p *= 1 - lr_t*wd`` before
    the Adam step. ``decay="independent"`` is the paper's fully decoupled form,
    ``p *= 1 - eta_t*wd`` with ``eta_t = lr_t / reference_lr``: for one fixed ``lr`` it equals
    ``"decoupled"`` with ``wd / lr``; across a sweep of ``lr`` the good ``wd`` stops moving.
    {_ARGS_COMMON}
        betas, eps, amsgrad, capturable, state_dtype: as :class:`Adam`.{_ARGS_OWN}

    >>> import torch, adamkit.torch as ak
    >>> w = torch.ones(2, requires_grad=True)
    >>> opt = ak.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = torch.zeros(2); opt.step(); w.detach().tolist()   # zero gradient: decay alone
    [0.949999988079071, 0.949999988079071]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, decay="decoupled", impl="auto", state_dtype=None,
                 reference_lr=None, rounding="nearest", rounding_seed=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decay=decay, impl=impl, state_dtype=state_dtype,
                         reference_lr=reference_lr, rounding=rounding, rounding_seed=rounding_seed)

    def _adopt_saved_decay(self, group, saved, mine):
        # torch.optim.AdamW stays decoupled whatever it loads (an Adam checkpoint included);
        # so does this one, unless it was itself constructed with a coupled mode.
        super()._adopt_saved_decay(group, saved, mine)
        coupled = not rules.DECAY_MODES[group["decay"]].torch_decoupled
        if coupled and rules.DECAY_MODES[mine["decay"]].torch_decoupled:
            group["decay"] = mine["decay"]
            group["decoupled_weight_decay"] = True


class StableAdamW(_Base):
    __doc__ = f"""StableAdamW (Wortsman et al. 2023): AdamW with its rate clipped per tensor, as ``optimi.StableAdamW``.

    .. math::
        c = \\max\\bigl(1, \\operatorname{{RMS}}(g^2 / \\max(\\hat v, \\epsilon^2))\\bigr), \\quad
        p \\leftarrow \\bigl(1 - (1 - s)/c\\bigr) p - \\frac{{\\text{{lr}}}}{{c}} \\,
        \\frac{{\\hat m}}{{\\sqrt{{\\hat v}} + \\epsilon}}

    The decay uses the clipped rate too (see :func:`adamkit.rules.stable_adamw`).
    {_ARGS_COMMON}
        betas (tuple): ``(beta1, beta2)``, default ``(0.9, 0.99)``; eps (float): added to the
            bias-corrected ``sqrt(v)``, and ``eps**2`` floors ``v_hat`` in the RMS, default ``1e-6``.
        state_dtype (torch.dtype): dtype of ``exp_avg``/``exp_avg_sq``; default: the param's.{_ARGS_OWN}

    Default ``decay="decoupled"``, ``weight_decay=1e-2`` (optimi's); optimi's ``decouple_lr=True``
    is ``decay="independent"``.
    """

    _algorithm = "stable_adamw"
    _torch_flags = dict(foreach=None, maximize=False, differentiable=False)
    _sparse_error = RuntimeError

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-6, weight_decay=1e-2, *, maximize=False,
                 foreach=None, differentiable=False, decay="decoupled", impl="auto", state_dtype=None,
                 reference_lr=None, rounding="nearest", rounding_seed=None):
        _checks.check_lr(lr)
        _checks.check_betas(betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, decay=decay, impl=impl,
                        state_dtype=state_dtype, reference_lr=reference_lr,
                        **_rounding_defaults(rounding, rounding_seed))
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_moments(group)

    def _scalar_bundle(self, group, lr, terms):
        beta1, beta2 = group["betas"]
        return rules.StableAdamWScalars(lr, beta1, beta2, group["eps"], *terms, group["maximize"])


def _check_horizon(value, name):
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"Invalid {name} value: {value!r} ({name} must be None or a number of steps > 0)")


class AdEMAMix(_Base):
    __doc__ = f"""AdEMAMix (Pagliardini et al. 2024): Adam plus a slow gradient EMA, as bitsandbytes' ``AdEMAMix``.

    .. math::
        m_1 = \\beta_1 m_1 + (1-\\beta_1) g, \\quad m_2 = \\beta_{{3,t}} m_2 + (1-\\beta_{{3,t}}) g, \\quad
        v = \\beta_2 v + (1-\\beta_2) g^2, \\quad
        p \\leftarrow s\\,p - \\text{{lr}} \\,
        \\frac{{m_1/(1-\\beta_1^t) + \\alpha_t m_2}}{{\\sqrt{{v/(1-\\beta_2^t)}} + \\epsilon}}
    {_ARGS_COMMON}
        betas (tuple): ``(beta1, beta2, beta3)``: fast EMA, second moment, slow EMA; default
            ``(0.9, 0.999, 0.9999)``.
        alpha (float): weight of the slow EMA, default 5.
        t_alpha, t_beta3 (int): warm-up horizons of ``alpha`` (linear from 0) and ``beta3`` (from
            ``beta1``, half-life growing linearly); None (default): no warm-up. See
            :func:`adamkit.rules.ademamix_schedules`.
        eps (float): added to the bias-corrected ``sqrt(v)``, default ``1e-8``.
        state_dtype (torch.dtype): dtype of ``exp_avg``/``exp_avg_sq``/``exp_avg_slow``; default: the
            param's.{_ARGS_OWN}

    Default ``decay="decoupled"``, ``weight_decay=1e-2`` (the paper's and bitsandbytes').
    """

    _algorithm = "ademamix"
    _torch_flags = dict(foreach=None, maximize=False, differentiable=False)
    _sparse_error = RuntimeError

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, eps=1e-8, weight_decay=1e-2,
                 t_alpha=None, t_beta3=None, *, maximize=False, foreach=None, differentiable=False,
                 decay="decoupled", impl="auto", state_dtype=None, reference_lr=None, rounding="nearest",
                 rounding_seed=None):
        _checks.check_lr(lr)
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas, alpha=alpha,
                        eps=eps, weight_decay=weight_decay, t_alpha=t_alpha, t_beta3=t_beta3, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, decay=decay, impl=impl,
                        state_dtype=state_dtype, reference_lr=reference_lr,
                        **_rounding_defaults(rounding, rounding_seed))
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 3:
            raise ValueError(f"Invalid betas={betas!r}; expected a triple (beta1, beta2, beta3)")
        for i, b in enumerate(betas):
            _checks.check_beta(b, f"betas[{i}]")
        _checks.check_nonnegative(group["alpha"], "alpha")
        _checks.check_eps(group["eps"])
        _check_horizon(group["t_alpha"], "t_alpha")
        _check_horizon(group["t_beta3"], "t_beta3")
        if group["t_beta3"] is not None and not (betas[0] > 0 and betas[2] > 0):
            raise ValueError(f"Invalid betas={tuple(betas)!r} for t_beta3={group['t_beta3']!r}: the beta3 "
                             "warm-up runs from beta1 to beta3 on a log scale, so both must be > 0")
        _checks.check_choice(group.get("state_dtype"), "state_dtype", _STATE_DTYPES)

    def _scalar_bundle(self, group, lr, terms):
        beta1, beta2, beta3 = group["betas"]
        return rules.AdEMAMixScalars(lr, beta1, beta2, beta3, group["alpha"], group["t_alpha"], group["t_beta3"],
                                     group["eps"], *terms, group["maximize"])
