"""Stateful NumPy optimizers over lists of float arrays, updated in place.

They mirror torch.optim's shape: param groups (dicts with ``"params"`` and
per-group hyperparameters), ``state`` per parameter, ``state_dict()`` and
``load_state_dict()``. ``group["reference_lr"]`` is the rate at construction (or the
``reference_lr=`` given), so when a schedule changes ``group["lr"]`` the multiplier
``eta = lr / reference_lr`` (:func:`adamkit.rules.schedule_multiplier`) drives ``decay="independent"``.
"""

import concurrent.futures
import copy
import functools
import itertools
import os
import warnings
from typing import NamedTuple

import numpy as np

from adamkit import _checks, quant, rules


def _decay_terms(group, said):
    """The group's decay mode reduced to ``(l2, l1, shrink)``, computed as written for any rate; a
    :func:`adamkit.rules.decay_warning` is said once per kind (``said``: the optimizer's set)."""
    lr, wd = group["lr"], group["weight_decay"]
    eta = rules.schedule_multiplier(lr, group["reference_lr"])
    terms = rules.decay_terms(group["decay"], wd, lr, eta)
    warning = rules.decay_warning(group["decay"], terms, lr=lr, weight_decay=wd, reference_lr=group["reference_lr"],
                                  eta=eta)
    if warning and warning.kind not in said:
        said.add(warning.kind)
        warnings.warn(warning.message, RuntimeWarning, stacklevel=4)
    return terms._asdict()


# Bytes per chunk of one array on one thread: the chunk of p, g, m, v and two scratch buffers
# stay in a core's L2 cache (or close by) while each ufunc runs over it, so a step streams the
# arrays through memory once instead of once per operation, and allocates nothing the size of a
# parameter. Each ufunc call also costs ~0.5 us and takes the GIL.
CHUNK_BYTES = 1 << 18
# Bytes per chunk on several threads: threads that make many short ufunc calls queue for the
# GIL. Two threads on 256 KB chunks at times gained nothing over one; on 1 MB chunks, which
# leave L2, they kept their gain (benchmarks/numpy_chunks.py, benchmarks/RESULTS.md).
THREADED_CHUNK_BYTES = 1 << 20
# Threads take a step's pieces, this many bytes of each array, in turn; a step gets at most one
# thread per piece of its length.
PIECE_BYTES = 1 << 22


def _flat_views(arrays):
    """1-D views of arrays that share one dense layout, or None (a view would be a copy)."""
    first = arrays[0]
    if not (first.flags.c_contiguous or first.flags.f_contiguous):
        return None
    if any(a.strides != first.strides or a.dtype != first.dtype for a in arrays[1:]):
        return None
    return [a.reshape(-1, order="A") for a in arrays]


@functools.cache
def _threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool():
    return concurrent.futures.ThreadPoolExecutor(_threads())


def _pieces(jobs, piece_bytes):
    """Every job cut into ``(job, lo, hi)`` pieces of ``piece_bytes`` (the last one shorter)."""
    for j, (arrays, _) in enumerate(jobs):
        n, span = arrays[0].size, piece_bytes // arrays[0].itemsize
        yield from ((j, lo, min(lo + span, n)) for lo in range(0, n, span))


def _run(jobs):
    """:func:`_adam_in_place` on every ``(arrays, scalars)`` job of a step. A step long enough is
    shared out across threads, which take its pieces in turn from one counter, so no thread
    waits at each tensor or for a thread that fell behind."""
    threads = min(_threads(), sum(arrays[0].nbytes for arrays, _ in jobs) // PIECE_BYTES)
    if threads <= 1:
        for arrays, h in jobs:
            _adam_in_place(*arrays, h, CHUNK_BYTES)
        return
    pieces, taken = list(_pieces(jobs, PIECE_BYTES)), itertools.count()

    def work():
        while (i := next(taken)) < len(pieces):  # count's next is atomic under the GIL
            j, lo, hi = pieces[i]
            arrays, h = jobs[j]
            _adam_in_place(*[None if a is None else a[lo:hi] for a in arrays], h, THREADED_CHUNK_BYTES)

    for future in [_pool().submit(work) for _ in range(threads)]:
        future.result()


class _AdamScalars(NamedTuple):
    """The step's scalars, in the order and form :func:`adamkit.rules.adam` uses them."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    l2: float
    l1: float
    shrink: float
    sign: float  # -1 when maximizing
    bias1: float  # 1 - beta1**t
    sqrt_bias2: float  # (1 - beta2**t) ** 0.5

    @classmethod
    def of(cls, group, step, said):
        beta1, beta2 = group["betas"]
        terms = _decay_terms(group, said)
        return cls(group["lr"], beta1, beta2, group["eps"], terms["l2"], terms["l1"], terms["shrink"],
                   -1.0 if group["maximize"] else 1.0, 1 - beta1**step, (1 - beta2**step) ** 0.5)


def _adam_in_place(p, g, m, v, vmax, h, chunk_bytes):
    r""":func:`adamkit.rules.adam` on 1-D arrays, chunk by chunk, in place.

    Each chunk runs the rule's operations in the rule's order, with the bias corrections
    folded into two scalars, through two chunk-sized buffers (``d``: the decayed gradient,
    then the step; ``t``: scratch, then the denominator):

    .. math::
        d = \pm g + l_2 p + l_1 \operatorname{sign}(p), \quad p \mathrel{*}= s, \quad
        m = \beta_1 m + (1-\beta_1) d, \quad v = \beta_2 v + (1-\beta_2) d^2, \\
        p \mathrel{-}= \frac{\text{lr} \sqrt{b_2}}{b_1} \cdot \frac{m}{\sqrt{\hat v} + \epsilon \sqrt{b_2}}

    so float64 results equal the rule's to a few roundings. ``g`` is only read.
    """
    chunk = max(1, min(chunk_bytes // p.itemsize, p.size))
    d_buf, t_buf = np.empty(chunk, p.dtype), np.empty(chunk, p.dtype)
    if h.l1:  # l1*sign(p): l1 with p's sign bit, or 0 (np.sign is not vectorized); a NaN p takes +-l1
        bits = np.dtype(f"i{p.itemsize}")
        sign_bit, l1_bits = bits.type(np.iinfo(bits).min), np.array(h.l1, p.dtype).view(bits)
        zero_buf = np.empty(chunk, bool)
    for start in range(0, p.size, chunk):
        end = min(start + chunk, p.size)
        pc, gc, mc, vc = p[start:end], g[start:end], m[start:end], v[start:end]
        d, t = d_buf[:end - start], t_buf[:end - start]
        dc = gc  # read, never written: the caller's gradient stays as it was
        if h.sign < 0:
            dc = np.negative(gc, out=d)
        if h.l2:
            np.multiply(pc, h.l2, out=t)
            dc = np.add(dc, t, out=d)
        if h.l1:
            np.bitwise_and(pc.view(bits), sign_bit, out=t.view(bits))
            np.bitwise_or(t.view(bits), l1_bits, out=t.view(bits))
            zero = np.equal(pc, 0, out=zero_buf[:end - start])
            if zero.any():
                t[zero] = 0
            dc = np.add(dc, t, out=d)
        d = dc
        if h.shrink != 1:
            pc *= h.shrink
        mc *= h.beta1
        np.multiply(d, 1 - h.beta1, out=t)
        mc += t
        vc *= h.beta2
        np.multiply(d, 1 - h.beta2, out=t)
        t *= d
        vc += t
        if vmax is not None:
            vh = np.maximum(vmax[start:end], vc, out=vmax[start:end])
        else:
            vh = vc
        np.sqrt(vh, out=t)
        t += h.eps * h.sqrt_bias2
        d = d_buf[:end - start]
        np.multiply(mc, h.lr * h.sqrt_bias2 / h.bias1, out=d)
        d /= t
        pc -= d


class Optimizer:
    """Base class: param groups, per-parameter state and checkpoints."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # global parameter index -> dict of arrays and counters
        self.param_groups = []
        self._said = set()  # the kinds of decay warning given
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
        """Update ``p`` now, or return the ``(arrays, scalars)`` job that will (see :func:`_run`)."""
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
        self._check_writable(params, grads)
        jobs, index = [], 0
        for group in self.param_groups:
            for p in group["params"]:
                g = grads[index]
                if g is not None:
                    job = self._update(group, p, np.asarray(g, dtype=p.dtype), self.state.setdefault(index, {}))
                    if job is not None:
                        jobs.append(job)
                index += 1
        _run(jobs)

    def _check_writable(self, params, grads):
        """Every array this step writes (a parameter, its state) must be writable: checked for
        all of them before any is touched, so a read-only one never leaves a half step."""
        for index, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if not p.flags.writeable:
                raise ValueError(f"params: parameter {index} (shape {p.shape}) is read-only; the optimizer "
                                 "updates parameters in place (make it writable, e.g. with .copy())")
            for key, value in self.state.get(index, {}).items():
                if isinstance(value, np.ndarray) and not value.flags.writeable:
                    raise ValueError(f"state[{index}][{key!r}] is read-only; the optimizer updates its state "
                                     "in place (load a writable copy)")

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
        # a quantized format's codes and scales, and the moments it keeps unquantized, stay as saved
        as_saved = {i for g in saved if g.get("state_dtype") for i in g["params"]}
        for index, entry in state.items():
            for key, value in entry.items():
                if int(index) in as_saved:
                    continue
                if isinstance(value, np.ndarray) and value.shape != params[index].shape:
                    raise ValueError(f"state_dict: state[{index}][{key!r}] has shape {value.shape}, "
                                     f"parameter has shape {params[index].shape}")
        groups = []
        for group, new in zip(self.param_groups, saved):
            new = {k: copy.deepcopy(v) for k, v in new.items() if k != "params"}
            self._check(new)
            groups.append({**new, "params": group["params"]})
        self.param_groups = groups
        self.state = {int(k): {key: (v.astype(params[int(k)].dtype) if isinstance(v, np.ndarray)
                                     and int(k) not in as_saved else v)
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
        rules.check_decay(group["decay"])

    def _update(self, group, p, g, state):
        p[...], buf = rules.sgd(
            p, g, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
            **_decay_terms(group, self._said))
        if group["momentum"] != 0:
            state["momentum_buffer"] = buf.copy() if buf is g else buf


class Adam(Optimizer):
    """Adam (Kingma & Ba) with a weight-decay mode; default ``decay="l2"`` as torch.optim.Adam.

    ``state_dtype="8bit"`` or ``"4bit"`` keeps the moments blockwise-quantized
    (:data:`adamkit.rules.STATE_FORMATS`), with the layout of :class:`adamkit.torch.Adam`'s: flat
    uint8 codes under the moment's name, float32 scales under ``name + "_absmax"``.
    """

    _default_decay = "l2"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decay=None, reference_lr=None, state_dtype=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decay=decay or self._default_decay, reference_lr=reference_lr,
                                      state_dtype=state_dtype))

    def _check(self, group):
        _checks.check_lr(group["lr"])
        _checks.check_betas(group["betas"])
        _checks.check_eps(group["eps"])
        _checks.check_nonnegative(group["weight_decay"], "weight_decay")
        rules.check_decay(group["decay"])
        _checks.check_choice(group.get("state_dtype"), "state_dtype", (None, *rules.STATE_FORMATS))

    def step(self, grads):
        self._scalars = {}  # (group, step count) -> _AdamScalars, for this step only
        super().step(grads)

    def _update(self, group, p, g, state):
        fmt = rules.STATE_FORMATS.get(group.get("state_dtype"))
        if fmt is not None:
            return self._update_quantized(group, p, g, state, fmt)
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        arrays = [p, g, state["exp_avg"], state["exp_avg_sq"]]
        if group["amsgrad"]:
            arrays.append(state["max_exp_avg_sq"])
        flat = _flat_views(arrays)
        if flat is None:  # a layout the flat walk cannot take: the rule itself, with its temporaries
            beta1, beta2 = group["betas"]
            p[...], state["exp_avg"][...], state["exp_avg_sq"][...], vmax = rules.adam(
                p, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                amsgrad=group["amsgrad"], maximize=group["maximize"], **_decay_terms(group, self._said))
            if group["amsgrad"]:
                state["max_exp_avg_sq"][...] = vmax
            return
        key = id(group), state["step"]  # a group's tensors mostly share a step count: its scalars once
        if key not in self._scalars:
            self._scalars[key] = _AdamScalars.of(group, state["step"], self._said)
        p1, g1, m1, v1, *vmax1 = flat
        return [p1, g1, m1, v1, vmax1[0] if vmax1 else None], self._scalars[key]


    def _update_quantized(self, group, p, g, state, fmt):
        """The rule on the dequantized moments (float32), then requantized; as adamkit.torch's reference."""
        slots = [s for s in rules.ALGORITHMS["adam"].slots if s.name != "max_exp_avg_sq" or group["amsgrad"]]
        if not state:
            state["step"] = 0
            for slot in slots:
                if fmt.quantizes(p.size):
                    state[slot.name], state[slot.name + "_absmax"] = quant.zeros(p.shape, fmt, like=p)
                else:
                    state[slot.name] = np.zeros_like(p, dtype=np.float32 if fmt.fallback == "float32" else p.dtype)
        state["step"] += 1
        held = [rules.Quantized(state[s.name], state[s.name + "_absmax"], fmt, s.signed, p.shape)
                if s.name + "_absmax" in state else state[s.name] for s in slots]
        values = [h.value() if isinstance(h, rules.Quantized) else h for h in held]
        beta1, beta2 = group["betas"]
        p[...], *news = rules.adam(
            p, g, values[0], values[1], values[2] if group["amsgrad"] else None, step=state["step"], lr=group["lr"],
            beta1=beta1, beta2=beta2, eps=group["eps"], amsgrad=group["amsgrad"], maximize=group["maximize"],
            **_decay_terms(group, self._said))
        for h, new in zip(held, news):
            if isinstance(h, rules.Quantized):
                h.store(new)
            else:
                h[...] = new


class AdamW(Adam):
    """Adam with decoupled weight decay; ``decay="independent"`` gives the paper's form."""

    _default_decay = "decoupled"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, decay=None, reference_lr=None, state_dtype=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decay=decay,
                         reference_lr=reference_lr, state_dtype=state_dtype)
