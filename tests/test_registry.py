"""Tests generated from the registry (tests/registry.py): every row against the float64 reference
and, where torch.optim has the mode, against torch.optim; checkpoints; bad input; ``meta`` placement."""

import io
import types

import pytest
import torch

from adamkit import rules
from adamkit.torch import kernels
from registry import ENTRIES, Case, cases, marked
from tolerances import assert_close

ROWS = cases()
SHAPES = [(7, 3), (1,), (0,), (), (300,), (4, 1, 3)]
QUANTIZED_SHAPE = (70, 64)  # 4,480 elements: quantized by every format, a short last 8-bit block


def _params(dtype, seed=0, case=None):
    gen = torch.Generator().manual_seed(seed)
    shapes = SHAPES + ([QUANTIZED_SHAPE] if case is not None and case.format else [])
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in shapes]


def _set_grads(lists, gen):
    for ps in zip(*lists):
        g = torch.randn(ps[0].shape, generator=gen, dtype=torch.float64) + 0.3 * ps[0].detach().double()
        for p in ps:
            p.grad = g.to(p.dtype)


def _value(opt, p):
    """The param's value as the optimizer holds it: plus the Kahan compensation where there is one."""
    comp = opt.state.get(p, {}).get("kahan_comp")
    return p.detach().double() + (comp.double() if comp is not None else 0)


def _coarser(case):
    """The dtype whose tolerance a row's params get: the coarsest of the param's, its state's and the
    one its kernel computes in."""
    math = torch.float32 if kernels.KERNELS[case.kernel].math == "fp32" or case.format else None
    dtypes = [d for d in (case.dtype, None if case.format else case.state_dtype, math) if d is not None]
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def _slots(case):
    return [slot.name for slot in rules.ALGORITHMS[case.algorithm].slots]


def _moment(opt, p, key, case):
    """A state slot's value, dequantized where the row's format holds it as codes and scales."""
    state, slot = opt.state[p], next(s for s in rules.ALGORITHMS[case.algorithm].slots if s.name == key)
    if key + "_absmax" not in state:
        return state[key].double()
    return rules.dequantize(state[key], state[key + "_absmax"], case.format, p.shape, signed=slot.signed).double()


def _assert_quantized_close(opt, p, key, case, expected):
    """Within half a map step of the block's scale (the whole least step for a map without zero) of
    what the float64 oracle computed: the kernel's float32 moment, rounded to its format."""
    fmt, state = case.format, opt.state[p]
    slot = next(s for s in rules.ALGORITHMS[case.algorithm].slots if s.name == key)
    assert state[key].dtype == torch.uint8, key
    table = torch.as_tensor(fmt.map(slot.signed)).double()
    step = max(torch.diff(table).max().item() / 2, table.abs().min().item())
    scales = state[key + "_absmax"].double().repeat_interleave(fmt.block)[:p.numel()].view(p.shape)
    err = (_moment(opt, p, key, case) - expected).abs()
    slack = step * scales + 1e-6 * expected.abs().max() + 1e-30
    assert (err <= slack).all(), f"{case.id} {key}: {(err - slack).max().item():.3g} beyond a quantization step"


def test_the_registry_covers_every_kernel_decay_mode_and_rounding_that_runs_here():
    seen = {(c.kernel, c.decay) for c in ROWS} | {(c.kernel, c.rounding) for c in ROWS}
    for kernel in kernels.KERNELS.values():
        if kernel.runs_on("cpu") and kernel.available():
            assert {(kernel.name, d) for d in rules.DECAY_MODES} <= seen, kernel.name
            assert {(kernel.name, r) for r in kernel.roundings} <= seen, kernel.name


# A kernel computing in a half param's own dtype (torch's foreach) is not within that dtype's
# rounding of float64: a second moment under 6e-8 is 0 in fp16 and its step is lr*m/eps. Those
# rows are compared with torch.optim's own foreach path (test_torch_vs_torch_optim.py).
REFERENCE_ROWS = [c for c in ROWS if not (kernels.KERNELS[c.kernel].math == "param" and c.dtype in (torch.float16,
                                                                                                      torch.bfloat16))]


@pytest.mark.parametrize("case", marked(REFERENCE_ROWS))
def test_each_step_matches_the_float64_reference(case):
    """Each step from equal inputs (torch's re-synced comparison), params and every state slot."""
    entry = ENTRIES[case.algorithm]
    ps, oracle_ps = _params(case.dtype, case=case), _params(torch.float64, case=case)
    opt = entry.cls(ps, **case.options())
    oracle = entry.cls(oracle_ps, **dict({k: v for k, v in case.options().items() if k != "state_dtype"},
                                         impl="reference", rounding="nearest"))
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6) for o in (opt, oracle)]  # eta moves
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        with torch.no_grad():  # the oracle starts from exactly what the kernel holds
            for p, q in zip(ps, oracle_ps):
                q.copy_(_value(opt, p))
                for key, value in opt.state.get(p, {}).items():
                    if key == "step":
                        oracle.state[q][key] = value.detach().clone()
                    elif key != "kahan_comp" and not key.endswith("_absmax") and torch.is_tensor(value):
                        oracle.state[q][key] = _moment(opt, p, key, case).clone()  # a quantized one: dequantized
        _set_grads([ps, oracle_ps], gen)
        for q, p in zip(oracle_ps, ps):
            q.grad = p.grad.double()
        opt.step()
        oracle.step()
        for sched in scheds:
            sched.step()
        for p, q in zip(ps, oracle_ps):
            assert_close(_value(opt, p), q.detach(), _coarser(case), msg=f"{case.id} param")
            for key in _slots(case):
                if key not in oracle.state[q]:
                    continue
                held = opt.state[p][key]
                if key + "_absmax" in opt.state[p]:
                    _assert_quantized_close(opt, p, key, case, oracle.state[q][key])
                    continue
                fmt = case.format  # a tensor its format leaves alone keeps plain moments
                kept = (torch.float32 if fmt.fallback == "float32" else case.dtype) if fmt else case.state_dtype
                assert held.dtype == (kept or case.dtype), key
                assert_close(held.double(), oracle.state[q][key], _coarser(case), msg=f"{case.id} {key}")


PEER_ROWS = [c for c in ROWS if c.decay in ENTRIES[c.algorithm].peer and c.dtype in (torch.float32, torch.float64)
             and c.state_dtype is None]


@pytest.mark.parametrize("case", marked(PEER_ROWS))
def test_free_running_steps_match_torch_optim(case):
    entry = ENTRIES[case.algorithm]
    peer_cls, extra = entry.peer[case.decay]
    ours, theirs = _params(case.dtype), _params(case.dtype)
    opt = entry.cls(ours, **case.options())
    kwargs = {k: v for k, v in case.options().items() if k not in ("decay", "impl", "rounding")}
    peer = peer_cls(theirs, **kwargs, **extra)
    gen = torch.Generator().manual_seed(2)
    for _ in range(8):
        _set_grads([ours, theirs], gen)
        opt.step()
        peer.step()
    scale = 4.0 if case.dtype == torch.float32 else 1.0  # eight steps of fp32 rounding, differently ordered
    assert_close(torch.cat([p.detach().flatten() for p in ours]), torch.cat([p.detach().flatten() for p in theirs]),
                 _coarser(case), scale, msg=case.id)


def _saved(obj):
    """``obj`` through torch.save and torch.load (weights only), as a checkpoint file carries it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("case", marked(ROWS))
def test_save_load_continue_equals_not_stopping(case):
    """Bit for bit, through a checkpoint file, with a scheduler moving the rate."""
    entry = ENTRIES[case.algorithm]
    straight, first, second = (_params(case.dtype, case=case) for _ in range(3))
    opt, opt1 = entry.cls(straight, **case.options()), entry.cls(first, **case.options())
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6) for o in (opt, opt1)]
    gen1, gen2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)

    def steps(opts, lists, gens, scheds):
        for _ in range(2):
            for o, ps, gen, sched in zip(opts, lists, gens, scheds):
                _set_grads([ps], gen)
                o.step()
                sched.step()

    steps((opt, opt1), (straight, first), (gen1, gen2), scheds)
    saved = _saved({"params": [p.detach() for p in first], "opt": opt1.state_dict(), "sched": scheds[1].state_dict()})
    with torch.no_grad():
        for p, q in zip(saved["params"], second):
            q.copy_(p)
    opt2 = entry.cls(second, **dict(case.options(), lr=1.0))  # the checkpoint's settings win
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=6)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    steps((opt, opt2), (straight, second), (gen1, gen2), (scheds[0], sched2))
    for p, q in zip(straight, second):
        assert torch.equal(p, q), case.id
        for key, value in opt.state.get(p, {}).items():
            other = opt2.state[q][key]
            assert (value == other if not torch.is_tensor(value) else torch.equal(value, other)), (case.id, key)


BAD = [pytest.param(name, kwargs, exc, match, id=f"{name}-{'-'.join(kwargs)}")
       for name, entry in ENTRIES.items() for kwargs, exc, match in entry.bad]


@pytest.mark.parametrize("name,kwargs,exc,match", BAD)
def test_bad_input_is_refused_naming_the_parameter_before_anything_changes(name, kwargs, exc, match):
    entry = ENTRIES[name]
    p = torch.ones(3, requires_grad=True)
    with pytest.raises(exc, match=match):
        entry.cls([p], **dict(entry.kwargs, **kwargs))
    opt = entry.cls([p], **entry.kwargs)
    opt.param_groups[0].update(kwargs)  # set by hand later: refused by step(), nothing changed
    p.grad = torch.ones(3)
    with pytest.raises(exc, match=match):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(3)) and not any(opt.state.values())


PLACEMENT = [pytest.param(algorithm, name, id=f"{algorithm}-{name}") for name, k in kernels.KERNELS.items()
             if k.runs_on("cuda") for algorithm in sorted(k.algorithms & ENTRIES.keys())]


@pytest.mark.parametrize("algorithm,name", PLACEMENT)
def test_cuda_placement_on_meta_stand_ins(algorithm, name, monkeypatch):
    """``meta`` tensors planned as CUDA ones: the kernel asked for is planned, handed its tensors, and
    finds ``step`` where its record says it reads it and every slot in the state format asked for."""
    monkeypatch.setattr(kernels, "device_type", lambda t: "cuda" if t.device.type == "meta" else t.device.type)
    calls = []

    def record(*args, **extra):
        calls.append(args)
        return [None] * len(args[0])

    monkeypatch.setitem(kernels._MODULES, name, types.SimpleNamespace(**{a: record for a in rules.ALGORITHMS}))
    kernel, entry = kernels.KERNELS[name], ENTRIES[algorithm]
    ps = [torch.zeros(s, device="meta", requires_grad=True) for s in [(4, 3), (5,)]]
    other_formats = any("float" in slot.formats for slot in rules.ALGORITHMS[algorithm].slots)
    state_dtype = torch.bfloat16 if other_formats and kernel.keeps(torch.bfloat16, torch.float32) else None
    options = dict(Case(algorithm, name, torch.float32, "decoupled", state_dtype=state_dtype).options())
    opt = entry.cls(ps, **options)
    assert [r["impl"] for r in opt.explain()] == [name, name]
    for p in ps:
        p.grad = torch.zeros_like(p)
    opt.step()
    assert len(calls) == 1 and [t.device.type for t in calls[0][0]] == ["meta", "meta"]
    for p in ps:
        state = opt.state[p]
        if "step" in state:
            assert state["step"].device.type == ("meta" if kernel.step_on_device else "cpu")
        for slot in rules.ALGORITHMS[algorithm].slots:
            if slot.name in state and not slot.lazy:
                assert state[slot.name].device.type == "meta"
                assert state[slot.name].dtype == (state_dtype or p.dtype)
