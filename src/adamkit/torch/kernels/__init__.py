"""Implementations of the optimizer step, and the one plan that decides which updates each tensor.

Every implementation is a :class:`Kernel` record that declares what it can do: the
algorithms of :data:`adamkit.rules.ALGORITHMS` it implements, devices, dtypes, layouts, state
formats, rounding modes, sparse gradients, autograd, a learning rate read on the device,
GradScaler's protocol and the dtype its math runs in. The shell asks these
records, never a kernel's name. The auto policy is data too: :data:`PREFERENCE`, an ordered
list per device, filtered by those abilities; the first kernel left updates the tensor and
the filter's reasons are what ``explain()`` prints.

Kernels work on flat lists of plain tensors (complex params arrive as real views, DTensors as
their local shards), receive one bundle of scalars (:class:`~adamkit.rules.AdamScalars`,
:class:`~adamkit.rules.SGDScalars`) with the weight-decay mode already reduced to
``(l2, l1, shrink)``, never increment ``step`` (the optimizer does, once) and never fall back
on their own. A kernel module offers one function per algorithm, named after it, called as
``fn(params, grads, *slots, [steps,] scalars, **extra)``; :func:`run` is the one entry point
that hands each kernel its share, for :mod:`adamkit.torch` and Keras's torch backend alike.
The reference kernel is derived from the algorithm records, so every algorithm has one.
"""

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch

from adamkit.rules import ALGORITHMS, STATE_FORMATS, AdamScalars, SGDScalars  # noqa: F401 (the scalars are re-exported)

FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
HALF = frozenset({torch.float16, torch.bfloat16})
ALL_ROUNDINGS = frozenset({"nearest", "kahan", "stochastic"})


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
    requirement = KERNELS[name].requires
    if requirement == "triton":
        return importlib.util.find_spec("triton") is not None
    if requirement == "compiler":
        return KERNELS[name].module.load() is not None
    return True


def _interpreted(device_type):
    """Whether a Triton kernel can run on ``device_type`` through Triton's CPU interpreter."""
    return device_type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


@dataclass(frozen=True)
class Kernel:
    name: str
    summary: str
    algorithms: frozenset  # names in adamkit.rules.ALGORITHMS it implements
    devices: frozenset | None  # device types it runs on; None: any
    dtypes: frozenset  # param dtypes it updates
    flat: bool  # indexes memory flat: param, grad and states must be dense with equal strides
    state_dtypes: frozenset = frozenset()  # float dtypes it keeps moments in apart from the param's
    state_formats: frozenset = frozenset()  # quantized formats (names in adamkit.rules.STATE_FORMATS) it keeps
    roundings: frozenset = frozenset({"nearest"})  # how it can write half-precision params
    sparse: bool = False  # takes sparse gradients (SGD)
    autograd: bool = False  # autograd flows through its step (differentiable=True)
    device_lr: bool = False  # reads lr (and the decay factor) as device tensors: no host sync
    step_on_device: bool = False  # reads state["step"] on the param's device (else a CPU tensor)
    grad_scaler: bool = False  # takes GradScaler's grad_scale and found_inf (its fused protocol)
    math: str = "opmath"  # its arithmetic: "opmath" (the param's dtype, fp32 for half params),
    #                       "param" (the param's dtype, half too) or "fp32" (fp32 whatever the param)
    stand_in: str | None = None  # a one-pass kernel that takes its requests for a rounding mode it lacks
    one_pass_l1: bool = False  # adds an L1 term within that pass (else in a pass of its own)
    requires: str | None = None  # "triton" (the package) or "compiler" (a C compiler to build it)
    interpreter: bool = False  # also runs on the CPU under TRITON_INTERPRET=1

    @property
    def module(self):
        """The module with one function per algorithm; Triton's is imported on first use."""
        if self.name not in _MODULES:
            _MODULES[self.name] = importlib.import_module(f"{__name__}.{self.name}")
        return _MODULES[self.name]

    def available(self):
        """Whether it can run on this machine (Triton installed, a C compiler present)."""
        return _available(self.name)

    def runs_on(self, device_type):
        return self.devices is None or device_type in self.devices or self.interpreter and _interpreted(device_type)

    def keeps(self, state_dtype, dtype):
        """Whether it can keep moments in ``state_dtype`` (None: the param's; a name: a quantized
        format) for ``dtype`` params."""
        if isinstance(state_dtype, str):
            return state_dtype in self.state_formats
        return state_dtype is None or state_dtype == dtype or state_dtype in self.state_dtypes


KERNELS = {k.name: k for k in (
    Kernel("reference", "one tensor at a time through adamkit.rules, fp32 math for half params (the oracle)",
           frozenset(ALGORITHMS), None, FLOATS, flat=False, state_dtypes=FLOATS, state_formats=frozenset(STATE_FORMATS),
           roundings=ALL_ROUNDINGS, sparse=True, autograd=True),
    Kernel("foreach", "torch's _foreach_* multi-tensor ops, math in the param dtype",
           frozenset({"adam", "sgd"}), None, FLOATS, flat=False, roundings=ALL_ROUNDINGS, math="param"),
    Kernel("fused", "torch's fused Adam/AdamW kernel, every decay mode mapped onto it",
           frozenset({"adam"}), frozenset({"cpu", "cuda", "mps", "xpu"}), FLOATS, flat=True, step_on_device=True,
           grad_scaler=True, stand_in="cpu"),
    Kernel("cpu", "the C kernel: one pass, one thread synchronisation per step, fp32 math, measured at least "
           "as fast as torch's fused CPU kernel",
           frozenset({"adam"}), frozenset({"cpu"}), frozenset({torch.float32, torch.bfloat16}), flat=True,
           state_dtypes=frozenset({torch.float32, torch.bfloat16}), roundings=ALL_ROUNDINGS, math="fp32",
           one_pass_l1=True, requires="compiler"),
    Kernel("triton", "one Triton launch per (device, dtype), fp32 math, lr and step on the device",
           frozenset({"adam"}), frozenset({"cuda"}), FLOATS, flat=True, state_dtypes=FLOATS, roundings=ALL_ROUNDINGS,
           device_lr=True, step_on_device=True, math="fp32", one_pass_l1=True, requires="triton", interpreter=True),
)}

IMPLS = ("auto", *KERNELS)  # what impl= takes

# The auto policy: per device type, kernels in order of preference; the first that can take a
# tensor updates it. On CUDA torch's fused kernel leads until a GPU run recorded in
# benchmarks/RESULTS.md shows Triton correct and faster; on the CPU the C kernel was measured at
# least as fast as torch's fused one in every mode (benchmarks/RESULTS.md, 2026-11-24).
PREFERENCE = {
    "cuda": ("fused", "triton", "foreach", "reference"),
    "cpu": ("cpu", "fused", "foreach", "reference"),
}
OTHER_DEVICES = ("fused", "foreach", "reference")
# Half-precision math in the param's dtype is avoided here: torch's CPU foreach ops round a
# Python scalar to the tensor's dtype (momentum 0.9 becomes 0.8984 in bf16).
NO_HALF_PARAM_DTYPE_MATH = frozenset({"cpu"})


def device_type(t):
    """The device type a tensor is planned for (tests stand ``meta`` tensors in for CUDA here)."""
    return t.device.type


class Choice(NamedTuple):
    kernel: str
    reason: str


class Need(NamedTuple):
    """What one tensor asks of a kernel."""

    algorithm: str
    device: str
    dtype: torch.dtype
    state_dtype: torch.dtype | None
    rounding: str
    l1: bool
    sparse: bool
    autograd: bool


def shortfall(kernel, need):
    """Why ``kernel`` cannot update a tensor with these needs, or None if it can."""
    if need.algorithm not in kernel.algorithms:
        return f"it has no {need.algorithm} step"
    if not kernel.runs_on(need.device):
        hint = " (or TRITON_INTERPRET=1 to run it on the CPU)" if kernel.interpreter else ""
        return f"it runs on {', '.join(sorted(kernel.devices))} tensors{hint}"
    if need.dtype not in kernel.dtypes:
        return f"it takes {sorted(str(d) for d in kernel.dtypes)}"
    if need.dtype in HALF and need.rounding not in kernel.roundings:
        return f"it rounds half-precision params to nearest only, not rounding={need.rounding!r}"
    if not kernel.keeps(need.state_dtype, need.dtype):
        if isinstance(need.state_dtype, str):
            return f"it cannot keep state_dtype={need.state_dtype!r} (a quantized format)"
        return f"it cannot keep state_dtype={need.state_dtype} for {need.dtype} params"
    if need.sparse and not kernel.sparse:
        return "it takes dense gradients only"
    if need.autograd and not kernel.autograd:
        return "autograd cannot flow through it (differentiable=True)"
    if not kernel.available():
        return ("it is not available here: pip install adamkit[triton]" if kernel.requires == "triton" else
                "it is not available here: no C compiler could build it (see the warning above)")
    return None


def _passed_over(kernel, need):
    """Why the auto policy passes over a kernel that could take the tensor, or None."""
    if kernel.math == "param" and need.dtype in HALF and need.device in NO_HALF_PARAM_DTYPE_MATH:
        return f"it computes in {need.dtype}, whose scalars round on the {need.device}"
    return None


def _extra_pass(kernel, need):
    if need.l1 and not kernel.one_pass_l1:
        return "it adds the L1 term in a pass of its own"
    return None


def _auto(need, candidates=None):
    """The first kernel of the device's preference (or of ``candidates``) that takes the tensor (one
    that needs an extra pass for L1 only if none does it in its own pass), and the reasons; or None."""
    candidates = candidates or PREFERENCE.get(need.device, OTHER_DEVICES)
    able = [n for n in candidates if shortfall(KERNELS[n], need) is None]
    fit = [n for n in able if _passed_over(KERNELS[n], need) is None] or able
    if not fit:
        return None
    name = next((n for n in fit if _extra_pass(KERNELS[n], need) is None), fit[0])
    before = candidates[:candidates.index(name)]
    why = [f"not {n}: {shortfall(KERNELS[n], need) or _passed_over(KERNELS[n], need) or _extra_pass(KERNELS[n], need)}"
           for n in candidates if n != name and (n not in able or n in before)]
    return Choice(name, "; ".join([KERNELS[name].summary, *why]))


def requested(impl, *, foreach=None, fused=None, differentiable=False):
    """The implementation a group asks for: ``impl=``, or torch.optim's flags mapped onto it
    (``differentiable=True`` leaves the choice to the plan, among kernels autograd flows through)."""
    if impl != "auto" or differentiable:
        return impl
    if fused:
        return "fused"
    if foreach:
        return "foreach"
    if foreach is False:
        return "reference"  # torch's for-loop
    return "auto"


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


def plan(algorithm, impl, params, grads, *, l1=False, state_dtype=None, others=None, rounding="nearest",
         autograd=False):
    """One :class:`Choice` per tensor: which kernel updates it, and why.

    ``algorithm`` names a record of :data:`adamkit.rules.ALGORITHMS`; ``impl`` is what the group
    asks for (see :func:`requested`); ``others[i]`` the state tensors that kernel must index alike
    (for the layout check). An explicit ``impl`` that cannot take a tensor is an error naming
    why; one without a step for the algorithm gives way to the auto policy; a layout that flat
    kernels cannot index goes to the reference kernel, which is correct for any.
    """
    choices = []
    for i, (p, g) in enumerate(zip(params, grads)):
        sparse = g is not None and g.is_sparse
        need = Need(algorithm, device_type(p), p.dtype, state_dtype, rounding, l1, sparse, autograd)
        if impl == "auto" or sparse or algorithm not in KERNELS[impl].algorithms:
            choice = _auto(need)
            if impl != "auto" and not sparse:
                choice = Choice(choice.kernel, f"{impl} has no {algorithm} step; {choice.reason}")
        elif (why := shortfall(KERNELS[impl], need)) is None:
            choice = Choice(impl, "requested")
        else:  # a kernel that lacks the rounding mode asked for may name one that stands in
            asked = KERNELS[impl]
            lacks_rounding = shortfall(asked, need._replace(rounding="nearest")) is None
            choice = _auto(need, (asked.stand_in,)) if asked.stand_in and lacks_rounding else None
            if choice is None:
                raise ValueError(f"impl={impl!r} cannot update param {i} ({p.dtype} on {need.device}): {why}; "
                                 "use impl='auto' or 'reference'")
            choice = Choice(choice.kernel, f"{impl} cannot: {why}; {choice.reason}")
        if KERNELS[choice.kernel].flat and not flat_ok(p, [g] + list(others[i] if others else [])):
            choice = Choice("reference", f"{choice.kernel} indexes memory flat; this param, its grad or "
                                         "a state is strided differently")
        choices.append(choice)
    return choices


def unscale(kernel_names, grads, grad_scale, found_inf):
    """GradScaler's fused protocol for kernels that lack it: ``(grads, grad_scale, found_inf, skip)``.

    Where every kernel in play takes ``grad_scale``/``found_inf`` they pass through; otherwise the
    step is skipped on an inf and the gradients are unscaled here, once."""
    if found_inf is None or all(KERNELS[name].grad_scaler for name in kernel_names):
        return grads, grad_scale, found_inf, False
    if found_inf.item():
        return grads, None, None, True
    grads = torch._foreach_div(grads, grad_scale) if grad_scale is not None else grads
    return grads, None, None, False


def run(algorithm, choices, params, grads, slots, steps, scalars, rounding=None, grad_scale=None, found_inf=None):
    """Hand each kernel of a plan its share of one step: the one entry point of every shell.

    ``slots`` has one list per slot of the algorithm record (a tensor or None per param);
    ``steps`` one ``step`` tensor per param (None for algorithms that do not count steps);
    ``scalars(kernel)`` gives the bundle a kernel reads (a device lr where it takes one);
    ``rounding(indices)`` the :class:`Rounding` for those params, or None. Returns the lazily
    created slot tensors (SGD's first momentum buffers), one list per lazy slot.
    """
    record = ALGORITHMS[algorithm]
    lazy = [list(values) for slot, values in zip(record.slots, slots) if slot.lazy]
    for name, idx in split(choices).items():
        kernel = KERNELS[name]
        args = [[params[i] for i in idx], [grads[i] for i in idx]]
        args += [[values[i] for i in idx] for values in slots]
        if record.counts_steps:
            args.append([steps[i] for i in idx])
        extra = {}
        if kernel.grad_scaler and found_inf is not None:
            extra.update(grad_scale=grad_scale, found_inf=found_inf)
        if kernel.roundings != {"nearest"} and rounding is not None:
            extra["rounding"] = rounding(idx)
        returned = getattr(kernel.module, algorithm)(*args, scalars(kernel), **extra)
        if lazy:
            for j, i in enumerate(idx):
                lazy[0][i] = returned[j]
    return lazy


# Imported here, not on demand, so that torch.compile traces a step without a graph break.
from adamkit.torch.kernels import cpu, foreach, fused, reference  # noqa: E402

_MODULES = {"reference": reference, "foreach": foreach, "fused": fused, "cpu": cpu}
