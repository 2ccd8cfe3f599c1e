"""Implementations of the optimizer step, and the one plan that decides which updates each tensor.

Every implementation is a :class:`Kernel` record: what it can take (devices, dtypes,
layouts, a state dtype apart from the param's), where the ``step`` it reads lives, and the
module holding its ``adam(...)`` and ``sgd(...)``. Kernels work on flat lists of plain
tensors (complex params arrive as real views, DTensors as their local shards), receive one
bundle of scalars (:class:`AdamScalars`, :class:`SGDScalars`) with the weight-decay mode
already reduced to ``(l2, l1, shrink)``, never increment ``step`` (the optimizer does, once)
and never fall back on their own: :func:`plan` is the only place that chooses.
"""

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch

IMPLS = ("auto", "reference", "foreach", "fused", "cpu", "triton")
FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})


class AdamScalars(NamedTuple):
    lr: float  # a float, or a one-element tensor for kernels that read it on the device
    beta1: float
    beta2: float
    eps: float
    l2: float
    l1: float
    shrink: float  # like lr: a float or a device tensor
    amsgrad: bool
    maximize: bool


class SGDScalars(NamedTuple):
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    l2: float
    l1: float
    shrink: float
    maximize: bool


class Rounding(NamedTuple):
    """How results reach half-precision params (see :mod:`.rounding`), for the kernels that offer it."""

    mode: str  # "nearest", "kahan" or "stochastic"
    seed: int
    keys: list  # per tensor: its index among all the optimizer's params (a stable key for the stream)
    steps: list  # per tensor: its ``step`` tensor, already counting this update
    comps: list  # per tensor: the Kahan compensation buffer, or None

    def key(self, i):
        """Tensor ``i``'s key into the stochastic stream at this step (see :mod:`.rounding`)."""
        from adamkit.torch.kernels import rounding

        return rounding.tensor_key(self.seed, self.keys[i], self.steps[i]) if self.mode == "stochastic" else None


# A fact about the machine: torch.compile takes it as a constant instead of tracing the build.
@torch.compiler.assume_constant_result
def _available(name):
    if name == "triton":
        return importlib.util.find_spec("triton") is not None
    if name == "cpu":
        return KERNELS["cpu"].module.load() is not None
    return True


def _triton_interpreted():
    return os.environ.get("TRITON_INTERPRET") == "1"


@dataclass(frozen=True)
class Kernel:
    name: str
    summary: str
    devices: frozenset | None  # device types it runs on; None: any
    dtypes: frozenset  # param dtypes it updates
    flat: bool  # indexes memory flat: param, grad and states must be dense with equal strides
    step_on_device: bool  # reads state["step"] on the param's device (else a CPU tensor)
    state_dtype: bool  # may keep moments in a dtype other than the param's
    sgd: bool  # has an SGD step
    differentiable: bool = False  # autograd can flow through its step
    sparse: bool = False  # takes sparse gradients (SGD)
    roundings: frozenset = frozenset({"nearest"})  # how it can write half-precision params

    @property
    def module(self):
        """The module with its ``adam``/``sgd``; Triton's is imported on first use."""
        if self.name not in _MODULES:
            _MODULES[self.name] = importlib.import_module(f"{__name__}.{self.name}")
        return _MODULES[self.name]

    def available(self):
        """Whether it can run on this machine (Triton installed, a C compiler present)."""
        return _available(self.name)

    def runs_on(self, device_type):
        if self.name == "triton" and device_type == "cpu":
            return _triton_interpreted()
        return self.devices is None or device_type in self.devices


KERNELS = {k.name: k for k in (
    Kernel("reference", "one tensor at a time through adamkit.rules, fp32 math for half params (the oracle)",
           None, FLOATS, flat=False, step_on_device=False, state_dtype=True, sgd=True, differentiable=True,
           sparse=True, roundings=frozenset({"nearest", "kahan", "stochastic"})),
    Kernel("foreach", "torch's _foreach_* multi-tensor ops, math in the param dtype",
           None, FLOATS, flat=False, step_on_device=False, state_dtype=False, sgd=True,
           roundings=frozenset({"nearest", "kahan", "stochastic"})),
    Kernel("fused", "torch's fused Adam/AdamW kernel, every decay mode mapped onto it",
           frozenset({"cpu", "cuda", "mps", "xpu"}), FLOATS, flat=True, step_on_device=True,
           state_dtype=False, sgd=False),
    Kernel("cpu", "adamkit's single-pass C kernel on torch's thread count, one wait per step, fp32 math",
           frozenset({"cpu"}), frozenset({torch.float32, torch.bfloat16}), flat=True, step_on_device=False,
           state_dtype=True, sgd=False, roundings=frozenset({"nearest", "kahan", "stochastic"})),
    Kernel("triton", "one Triton launch per (device, dtype), fp32 math, lr and step on the device",
           frozenset({"cuda"}), FLOATS, flat=True, step_on_device=True, state_dtype=True, sgd=False,
           roundings=frozenset({"nearest", "kahan", "stochastic"})),
)}


def device_type(t):
    """The device type a tensor is planned for (tests stand ``meta`` tensors in for CUDA here)."""
    return t.device.type


class Choice(NamedTuple):
    kernel: str
    reason: str


def _first(capability):
    """The first kernel record that has ``capability`` (e.g. ``"sparse"``)."""
    return next(name for name, k in KERNELS.items() if getattr(k, capability))


def requested(impl, *, foreach=None, fused=None, differentiable=False):
    """The implementation a group asks for: ``impl=``, or torch.optim's flags mapped onto it."""
    if differentiable:
        return _first("differentiable")
    if impl != "auto":
        return impl
    if fused:
        return "fused"
    if foreach:
        return "foreach"
    if foreach is False:
        return "reference"  # torch's for-loop
    return "auto"


def _auto_adam(dev, dtype, *, l1, state_dtype=None, rounding="nearest"):
    """torch's fused kernels where they apply; the measured exceptions otherwise."""
    own_state_dtype = state_dtype is not None and state_dtype != dtype
    triton = KERNELS["triton"]
    if dev == "cuda":
        # Triton stays opt-in until a GPU run in benchmarks/RESULTS.md shows it correct and faster.
        if own_state_dtype:
            return (Choice("triton", "state_dtype differs from the param's: Triton keeps it")
                    if triton.available() else Choice("reference", "state_dtype differs from the param's"))
        if l1:
            return (Choice("triton", "torch's fused Adam has no L1 term: Triton adds it in one pass")
                    if triton.available() else Choice("foreach", "torch's fused Adam has no L1 term"))
        return Choice("fused", "torch's fused CUDA kernel")
    if dev == "cpu":
        c = KERNELS["cpu"]
        if dtype in c.dtypes and (state_dtype or dtype) in c.dtypes and c.available():
            if rounding != "nearest" and dtype == torch.bfloat16:
                return Choice("cpu", f"rounding={rounding!r} for {dtype} params: the C kernel rounds in its one "
                                     "pass (torch's fused kernel rounds to nearest only)")
            if own_state_dtype:
                return Choice("cpu", f"state_dtype={state_dtype} differs from the param's: the C kernel keeps "
                                     "it in its one pass (torch's fused kernel cannot)")
            # benchmarks/RESULTS.md, 2026-11-24: at least as fast as torch's fused kernel in every mode.
            return Choice("cpu", "the C kernel: one pass, one thread synchronisation per step, "
                                 "measured at least as fast as torch's fused CPU kernel"
                                 + (" (which has no L1 term)" if l1 else ""))
    if own_state_dtype:
        return Choice("reference", "state_dtype differs from the param's: only the reference keeps it here")
    if dev == "cpu":
        return Choice("fused", "torch's fused CPU kernel")
    if KERNELS["fused"].runs_on(dev):
        return Choice("fused", f"torch's fused {dev} kernel")
    return Choice("foreach", f"no fused kernel for {dev} tensors")


def _auto_sgd(dev, dtype, why=""):
    why = why + ": " if why else ""
    if dtype in (torch.float16, torch.bfloat16) and dev == "cpu":
        # _foreach_mul_ with a Python scalar rounds the momentum to bf16 on the CPU (0.9 -> 0.8984).
        return Choice("reference", why + "half-precision params on the CPU: fp32 math, rounded once")
    return Choice("foreach", why + "torch's multi-tensor ops stream SGD's two passes")


def advance(steps):
    """Add one to every ``step`` tensor (the optimizer counts once per step, for every kernel): one
    C call when they are float32 CPU tensors and the C kernel is built, torch's multi-tensor add
    otherwise (which dispatches once per tensor)."""
    if all(s.is_cpu and s.dtype == torch.float32 for s in steps) and _available("cpu"):
        cpu.advance(steps)  # its addresses: checked here once
    else:
        torch._foreach_add_(steps, 1)


def split(choices):
    """``{kernel name: [indices]}`` of a plan, in plan order: what each kernel is handed."""
    out = {}
    for i, choice in enumerate(choices):
        out.setdefault(choice.kernel, []).append(i)
    return out


def _dense(t):
    """Elements fill ``numel`` consecutive slots from ``data_ptr`` (any dim order, no gaps)."""
    if t.is_contiguous() or t.numel() == 0:  # the common case, answered in C
        return True
    expected = 1
    for stride, size in sorted((st, s) for s, st in zip(t.shape, t.stride()) if s != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def flat_ok(p, others):
    """Flat indexing is valid: ``p`` is dense and every other tensor (None skipped) shares its
    shape and strides. torch's own fused kernels need this too: a strided param with a
    contiguous grad gets a wrong update from them."""
    return _dense(p) and all(t is None or (t.shape == p.shape and t.stride() == p.stride()) for t in others)


def _refuse(kernel, index, p, why):
    raise ValueError(f"impl={kernel.name!r} cannot update param {index} ({p.dtype} on {device_type(p)}): {why}; "
                     f"use impl='auto' or 'reference'")


def plan(rule, impl, params, grads, *, l1=False, state_dtype=None, others=None, rounding="nearest"):
    """One :class:`Choice` per tensor: which kernel updates it, and why.

    ``rule`` is ``"adam"`` or ``"sgd"``; ``impl`` what the group asks for (see :func:`requested`);
    ``others[i]`` the state tensors that kernel must index alike (for the layout check).
    An explicit ``impl`` that cannot take a tensor's device, dtype or state dtype is an error;
    a layout that flat kernels cannot index goes to the reference kernel, which is correct for any.
    """
    choices = []
    for i, (p, g) in enumerate(zip(params, grads)):
        dev, dtype = device_type(p), p.dtype
        own_state_dtype = state_dtype is not None and state_dtype != dtype
        if g is not None and g.is_sparse:
            choices.append(Choice(_first("sparse"), "sparse gradient"))
            continue
        if impl == "auto":
            choice = _auto_adam(dev, dtype, l1=l1, state_dtype=state_dtype, rounding=rounding) if rule == "adam" \
                else _auto_sgd(dev, dtype)
        else:
            kernel = KERNELS[impl]
            if rule == "sgd" and not kernel.sgd:
                choice = _auto_sgd(dev, dtype, f"{impl} has no SGD step")
            else:
                if not kernel.runs_on(dev):
                    hint = " (or TRITON_INTERPRET=1 to run it on the CPU)" if impl == "triton" else ""
                    _refuse(kernel, i, p, f"it runs on {', '.join(sorted(kernel.devices))} tensors{hint}")
                if dtype not in kernel.dtypes:
                    _refuse(kernel, i, p, f"it takes {sorted(str(d) for d in kernel.dtypes)}")
                if own_state_dtype and not (kernel.state_dtype and state_dtype in kernel.dtypes):
                    raise ValueError(f"impl={impl!r} cannot keep state_dtype={state_dtype} for {dtype} params; "
                                     "use impl='auto' or 'reference' (or 'cpu' or 'triton' where they take it)")
                if not kernel.available():
                    raise ValueError(f"impl={impl!r} is not available here: "
                                     + ("pip install adamkit[triton]" if impl == "triton" else
                                        "no C compiler could build it (see the warning above)"))
                choice = Choice(impl, "requested")
        kernel = KERNELS[choice.kernel]
        if rounding != "nearest" and dtype in (torch.float16, torch.bfloat16) and rounding not in kernel.roundings:
            c = KERNELS["cpu"]
            fused_on_cpu = rule == "adam" and impl == "fused" and dev == "cpu"
            if fused_on_cpu and dtype in c.dtypes and rounding in c.roundings and c.available():
                choice = Choice("cpu", f"rounding={rounding!r}: torch's fused kernel rounds to nearest only; the "
                                       "C kernel is fused too (one pass) and rounds as asked")
            elif choice.reason == "requested":
                raise ValueError(f"impl={impl!r} rounds half-precision params to nearest only; "
                                 f"rounding={rounding!r} needs impl='auto', 'reference', 'foreach', "
                                 "'cpu' (bf16 on the CPU) or 'triton' (CUDA)")
            else:
                use_triton = rule == "adam" and dev == "cuda" and KERNELS["triton"].available()
                choice = Choice("triton" if use_triton else "reference", f"rounding={rounding!r} for {dtype} params")
            kernel = KERNELS[choice.kernel]
        if kernel.flat and not flat_ok(p, [g] + list(others[i] if others else [])):
            choice = Choice("reference", f"{choice.kernel} indexes memory flat; this param, its grad or "
                                         "a state is strided differently")
        choices.append(choice)
    return choices


# Imported here, not on demand, so that torch.compile traces a step without a graph break.
from adamkit.torch.kernels import cpu, foreach, fused, reference  # noqa: E402

_MODULES = {"reference": reference, "foreach": foreach, "fused": fused, "cpu": cpu}
