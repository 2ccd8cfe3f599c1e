"""adamkit's C kernel for CPU Adam against the reference kernel: every decay mode, rounding mode,
state dtype, AMSGrad and maximize, on the CPU's AVX512-BF16 path and on the portable one.

Tolerances, and why. Both kernels compute in fp32 and their moments agree bit for bit; the
param update's last operations come in another order (the C kernel folds the bias corrections
into two per-tensor scalars), so its fp32 result may differ by a few fp32 ulps. Rounded to bf16
that is the same value but where the fp32 results straddle a rounding boundary: at most 2 bf16
ulps (near zero), in well under 0.1% of elements. A different random stream, or a stream
indexed differently, would change about a third of the stochastically rounded elements. Kahan's
compensation is a residual of those fp32 results, so it is checked as the value ``p + comp``
that the next step starts from: within 2**-15 of it. The rounding itself, on given fp32 values,
is checked bit for bit against :mod:`adamkit.torch.kernels.rounding`.
"""

import concurrent.futures
import contextlib
import io
import itertools
import multiprocessing
import os
import subprocess
import sys

import pytest
import torch

import adamkit.torch as ak
from adamkit.torch.kernels import cpu
from adamkit.torch.kernels import rounding as rnd
from tolerances import assert_close
from torch_configs import DECAYS

pytestmark = pytest.mark.skipif(cpu.load() is None, reason="no C compiler here (the fallback is tested below)")

# Odd sizes, one element, empty, scalars, more than one tile (2048), dozens of tensors.
SHAPES = [(7, 3), (1,), (0,), (), (5000,), (3, 0, 2), (17,), (4, 1, 3)] + [(i % 5 + 1, i % 3 + 2) for i in range(30)]
ROUNDINGS = ["nearest", "kahan", "stochastic"]
# (param dtype, state dtype): bf16 with its own or fp32 moments, fp32 with bf16 moments
DTYPES = [(torch.bfloat16, None), (torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)]
DTYPE_IDS = ["bf16", "bf16-fp32states", "fp32-bf16states"]
MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


@pytest.fixture(params=["native", "portable"])
def path(request):
    """Run on the CPU's bf16 instructions, then on the portable loops."""
    if request.param == "native" and not cpu.native_bf16(True):
        pytest.skip("this CPU has no AVX512-BF16")
    cpu.native_bf16(request.param == "native")
    yield request.param
    cpu.native_bf16(True)


def _ulps(a, b):
    """Elementwise distance between two tensors of one float dtype, in its units in the last place."""
    width = a.element_size() * 8
    ints = {16: torch.int16, 32: torch.int32}[width]

    def ordered(x):  # sign-magnitude bits to a monotone integer line
        i = x.contiguous().view(ints).long()
        return torch.where(i < 0, -(i & (2 ** (width - 1) - 1)), i)
    return (ordered(a) - ordered(b)).abs()


def _pair(p_dtype, impl="cpu", seed=0, shapes=SHAPES, **kwargs):
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=g).to(p_dtype) for s in shapes]
    fast = [p.clone().requires_grad_() for p in base]
    ref = [p.clone().requires_grad_() for p in base]
    kwargs = {"lr": 1e-2, "weight_decay": 0.1, "rounding_seed": 1234, **kwargs}
    return fast, ak.AdamW(fast, impl=impl, **kwargs), ref, ak.AdamW(ref, impl="reference", **kwargs)


def _grads(fast, ref, gen):
    for a, b in zip(fast, ref):
        g = torch.randn(a.shape, generator=gen).to(a.dtype)
        a.grad, b.grad = g.clone(), g.clone()


def _check(fast, opt_f, ref, opt_r):
    """The C kernel's params and states against the reference's (see the module docstring)."""
    differing = total = 0
    for a, b in zip(fast, ref):
        sa, sb = opt_f.state[a], opt_r.state[b]
        assert sa.keys() == sb.keys()
        for key in MOMENTS:
            if key in sb:
                assert sa[key].dtype == sb[key].dtype, key
                assert torch.equal(sa[key], sb[key]), f"{key} differs"
        if a.dtype == torch.float32:
            continue  # checked over the whole list below
        d = _ulps(a.detach(), b.detach())
        assert d.numel() == 0 or d.max() <= 2, f"param off by {d.max()} bf16 ulps"
        differing, total = differing + int((d > 0).sum()), total + d.numel()
        if "kahan_comp" in sb:
            torch.testing.assert_close(a.detach().float() + sa["kahan_comp"].float(),
                                       b.detach().float() + sb["kahan_comp"].float(), rtol=2**-15, atol=1e-7)
    assert differing <= 1e-3 * total + 1, f"{differing} of {total} bf16 param elements differ"
    if fast[0].dtype == torch.float32:
        assert_close(torch.cat([a.detach().flatten() for a in fast]).double(),
                     torch.cat([b.detach().flatten() for b in ref]).double(), torch.float32, msg="params")


def _resynced_run(fast, opt_f, ref, opt_r, steps, seed):
    """Each step from equal inputs and fresh random grads: the C kernel's state and params are
    set to the reference's, so differences cannot accumulate and each step is a fresh test."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
        _check(fast, opt_f, ref, opt_r)
        for a, b in zip(fast, ref):
            with torch.no_grad():
                a.copy_(b)
            for key, value in opt_r.state[b].items():
                opt_f.state[a][key].copy_(value)


def _bits_equal(a, b):
    """Bit for bit, NaN matching any NaN."""
    same = a.view(torch.int16) == b.view(torch.int16)
    return bool((same | (a.isnan() & b.isnan())).all())


def _awkward_values(n=10007, seed=0):
    """fp32 values over the whole range: subnormals, huge, negative, NaN, infinities, exact bf16."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * torch.logspace(-44, 38, n)[torch.randperm(n, generator=g)]
    x[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 3.4e38])
    x[6:100] = x[6:100].to(torch.bfloat16).float()  # already bf16: no rounding to do
    return x


@pytest.mark.parametrize("key", [0, 1, 0x9E3779B9, 0xFFFFFFFF])
def test_stochastic_rounding_of_given_values_is_the_shared_stream_bit_for_bit(path, key):
    x = _awkward_values()
    got, _ = cpu.round_bf16(x, "stochastic", key)
    assert _bits_equal(got, rnd.stochastic(x, torch.bfloat16, key))
    assert not _bits_equal(got, rnd.stochastic(x, torch.bfloat16, key + 1))  # the key matters


def test_kahan_and_nearest_rounding_of_given_values_are_the_reference_s(path):
    x = _awkward_values(seed=1)
    p, comp = torch.empty(x.shape, dtype=torch.bfloat16), torch.empty(x.shape, dtype=torch.bfloat16)
    rnd.write(p, x, "kahan", comp)
    got_p, got_comp = cpu.round_bf16(x, "kahan")
    assert _bits_equal(got_p, p) and _bits_equal(got_comp, comp)
    nearest, _ = cpu.round_bf16(x, "nearest")
    normal = x.abs() >= torch.finfo(torch.float32).tiny  # the CPU's instruction flushes subnormals
    assert _bits_equal(nearest[normal], x[normal].to(torch.bfloat16))
    if path == "portable":
        assert _bits_equal(nearest, x.to(torch.bfloat16))


# rounding modes leave fp32 params alone: test_rounding_modes_leave_fp32_params_alone
CASES = [pytest.param(p, s, r, id=f"{name}-{r}") for (p, s), name in zip(DTYPES, DTYPE_IDS) for r in ROUNDINGS
         if p == torch.bfloat16 or r == "nearest"]


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("p_dtype,state_dtype,rounding", CASES)
@pytest.mark.parametrize("amsgrad,maximize", list(itertools.product([False, True], [False, True])),
                         ids=["plain", "maximize", "amsgrad", "amsgrad-maximize"])
def test_matches_the_reference_each_step(path, decay, rounding, p_dtype, state_dtype, amsgrad, maximize):
    fast, opt_f, ref, opt_r = _pair(p_dtype, decay=decay, rounding=rounding, state_dtype=state_dtype,
                                    amsgrad=amsgrad, maximize=maximize)
    assert {r["impl"] for r in opt_f.explain()} == {"cpu"}
    _resynced_run(fast, opt_f, ref, opt_r, steps=4, seed=2)
    assert (rounding == "kahan") == ("kahan_comp" in opt_f.state[fast[0]])


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_many_steps_of_small_updates(rounding):
    """Fifty steps at a learning rate whose updates are mostly below half a bf16 ulp."""
    fast, opt_f, ref, opt_r = _pair(torch.bfloat16, seed=3, lr=1e-4, decay="l1", rounding=rounding,
                                    state_dtype=torch.float32, amsgrad=True)
    _resynced_run(fast, opt_f, ref, opt_r, steps=50, seed=4)


@contextlib.contextmanager
def torch_threads(n):
    """The kernel runs a step on torch.get_num_threads() threads: the caller and its pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@pytest.fixture(params=[1, 2, 3, 5])
def threads(request):
    with torch_threads(request.param):
        yield request.param


# A tensor of many chunks, then small ones that share chunks: every way a chunk can cut them.
LARGE = [(1 << 20) + 37, (5000,), (3,), (0,)] + [(40000 + 997 * i,) for i in range(6)]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("state_dtype", [None, torch.float32], ids=["bf16states", "fp32states"])
def test_a_step_shared_among_threads(path, threads, rounding, state_dtype):
    """Chunks cut across tensors and tiles wherever they fall; the stochastic stream is indexed by
    the element's place in its tensor, whatever thread takes it."""
    fast, opt_f, ref, opt_r = _pair(torch.bfloat16, shapes=LARGE, seed=5, decay="l1", rounding=rounding,
                                    state_dtype=state_dtype, amsgrad=True, maximize=True)
    _resynced_run(fast, opt_f, ref, opt_r, steps=2, seed=6)


def test_fp32_params_with_fp32_states_on_a_shared_step(threads):
    fast, opt_f, ref, opt_r = _pair(torch.float32, shapes=LARGE, seed=7, decay="l1", amsgrad=True, maximize=True)
    _resynced_run(fast, opt_f, ref, opt_r, steps=2, seed=8)


def _three_steps(dtype=torch.bfloat16, shapes=LARGE, rounding="stochastic", seed=12):
    fast, opt, _, _ = _pair(dtype, shapes=shapes, rounding=rounding, decay="l1", amsgrad=True)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(3):
        _grads(fast, fast, gen)
        opt.step()
    return [p.detach() for p in fast]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_the_thread_count_changes_no_bit(rounding):
    runs = []
    for n in (1, 2, 7, 1):
        with torch_threads(n):
            runs.append(_three_steps(rounding=rounding))
    assert all(_same(runs[0], run) for run in runs[1:])


def test_steps_from_two_python_threads_at_once():
    """ctypes lets go of the GIL: two optimizers stepping at once take turns in the kernel."""
    expected = _three_steps(torch.float32), _three_steps(torch.bfloat16)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            got = pool.submit(_three_steps, torch.float32), pool.submit(_three_steps, torch.bfloat16)
            assert _same(got[0].result(), expected[0]) and _same(got[1].result(), expected[1])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_the_pool_starts_as_many_threads_as_torch_is_set_to():
    """In a fresh process: a step over many chunks on torch.set_num_threads(4) starts three pool
    threads beside the caller, and a one-thread step none. Tensors stay below torch's own
    parallel grain, so torch starts no threads of its own."""
    script = """
import os, torch, adamkit.torch as ak
def step(threads):
    torch.set_num_threads(threads)
    ps = [torch.zeros(20000, requires_grad=True) for _ in range(40)]
    for p in ps:
        p.grad = torch.ones_like(p)
    before = len(os.listdir("/proc/self/task"))
    ak.AdamW(ps, impl="cpu").step()
    return len(os.listdir("/proc/self/task")) - before
print(step(1), step(4), step(4))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["0", "3", "0"]


def test_a_forked_child_steps_without_its_parents_threads():
    """A child has none of the pool's threads (a DataLoader worker, say): it steps on its own.
    Tensors stay below torch's own parallel grain: torch's OpenMP pool does not survive a fork."""
    shapes = [(20000,)] * 40  # dozens of chunks for the kernel
    with torch_threads(2):
        expected = _three_steps(torch.float32, shapes)  # starts the pool in this process
        child = multiprocessing.get_context("fork").Process(
            target=lambda: os._exit(0 if _same(_three_steps(torch.float32, shapes), expected) else 1))
        child.start()
        child.join(timeout=120)
        if child.exitcode is None:
            child.kill()
    assert child.exitcode == 0


def test_rounding_modes_leave_fp32_params_alone():
    runs = []
    for rounding in ROUNDINGS:
        fast, opt, _, _ = _pair(torch.float32, rounding=rounding, state_dtype=torch.bfloat16, amsgrad=True)
        _grads(fast, fast, torch.Generator().manual_seed(9))
        for _ in range(3):
            opt.step()
        assert "kahan_comp" not in opt.state[fast[0]]
        runs.append(torch.cat([p.detach().flatten() for p in fast]))
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_native_and_portable_paths_agree_bit_for_bit():
    """On normal values (the instruction flushes subnormals; these have none) every mode writes the same bits."""
    if not cpu.native_bf16(True):
        pytest.skip("this CPU has no AVX512-BF16")
    for rounding, state_dtype in itertools.product(ROUNDINGS, [None, torch.float32]):
        results = []
        try:
            for native in (True, False):
                cpu.native_bf16(native)
                fast, opt, _, _ = _pair(torch.bfloat16, seed=10, decay="l1", amsgrad=True, rounding=rounding,
                                        state_dtype=state_dtype)
                _grads(fast, fast, torch.Generator().manual_seed(11))
                for _ in range(3):
                    opt.step()
                results.append([t.detach().clone() for t in fast] +
                               [t.clone() for p in fast for k, t in opt.state[p].items() if k != "step"])
        finally:
            cpu.native_bf16(True)
        assert all(torch.equal(a, b) for a, b in zip(*results)), (rounding, state_dtype)


def _run(opt, params, gen, steps):
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)
        opt.step()


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("p_dtype,state_dtype", DTYPES, ids=DTYPE_IDS)
def test_save_reload_continue_equals_not_stopping(rounding, p_dtype, state_dtype):
    kwargs = dict(lr=1e-3, weight_decay=0.1, amsgrad=True, rounding=rounding, rounding_seed=7,
                  state_dtype=state_dtype, impl="cpu")
    base = [torch.randn(s, generator=torch.Generator().manual_seed(12)).to(p_dtype) for s in SHAPES[:8]]
    whole = [p.clone().requires_grad_() for p in base]
    _run(ak.AdamW(whole, **kwargs), whole, torch.Generator().manual_seed(13), 8)

    first = [p.clone().requires_grad_() for p in base]
    gen = torch.Generator().manual_seed(13)
    opt = ak.AdamW(first, **kwargs)
    _run(opt, first, gen, 4)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optimizer": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    second = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = ak.AdamW(second, lr=1e-3, impl="cpu", state_dtype=state_dtype)  # the rest comes from the checkpoint
    opt2.load_state_dict(saved["optimizer"])
    assert {r["impl"] for r in opt2.explain()} == {"cpu"}
    _run(opt2, second, gen, 4)
    for a, b in zip(second, whole):
        assert torch.equal(a, b)
    for key, t in opt2.state[second[0]].items():
        if key != "step":
            assert t.dtype == (state_dtype or p_dtype if key in MOMENTS else p_dtype), key


def test_auto_routes_every_state_dtype_and_rounding_here():
    bf16 = torch.zeros(4, dtype=torch.bfloat16, requires_grad=True)
    f32 = torch.zeros(4, requires_grad=True)
    for rounding in ROUNDINGS:
        rows = ak.AdamW([bf16, f32], rounding=rounding, state_dtype=torch.float32).explain()
        assert [r["impl"] for r in rows] == ["cpu", "cpu"]
        if rounding != "nearest":
            assert f"rounding={rounding!r}" in rows[0]["reason"] and "nearest only" in rows[0]["reason"]
        else:
            assert "state_dtype" in rows[0]["reason"]
    rows = ak.AdamW([f32], state_dtype=torch.bfloat16).explain()
    assert rows[0]["impl"] == "cpu" and "state_dtype" in rows[0]["reason"]
    assert ak.AdamW([f32], state_dtype=torch.float16).explain()[0]["impl"] == "reference"  # the C kernel has no fp16
    fp16 = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    assert ak.AdamW([fp16], rounding="kahan").explain()[0]["impl"] == "reference"


@pytest.mark.parametrize("flags", [dict(impl="fused"), dict(fused=True)], ids=["impl=fused", "fused=True"])
def test_fused_with_a_rounding_mode_on_bf16_takes_the_c_kernel_and_says_why(flags):
    bf16 = torch.zeros(4, dtype=torch.bfloat16, requires_grad=True)
    row = ak.AdamW([bf16], rounding="stochastic", **flags).explain()[0]
    assert row["impl"] == "cpu" and "nearest only" in row["reason"]
    assert ak.AdamW([bf16], **flags).explain()[0]["impl"] == "fused"  # nearest: torch's kernel, as asked
    fp16 = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    with pytest.raises(ValueError, match="rounding='kahan'"):
        ak.AdamW([fp16], rounding="kahan", **flags).explain()


def test_explicit_cpu_refuses_a_state_dtype_it_cannot_keep_before_any_change():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="state_dtype=torch.float16"):  # refused when built
        ak.AdamW([p], impl="cpu", state_dtype=torch.float16)
    opt = ak.AdamW([p], impl="cpu")
    opt.param_groups[0]["state_dtype"] = torch.float16  # set by hand later: refused at step(), before any change
    with pytest.raises(ValueError, match="state_dtype=torch.float16"):
        opt.step()
    assert not opt.state and not p.detach().any()


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_without_a_compiler_the_fallback_is_correct(monkeypatch, rounding):
    monkeypatch.setattr(cpu, "load", lambda: None)  # a machine without a C compiler
    fast, opt_f, ref, opt_r = _pair(torch.bfloat16, impl="auto", decay="l1", rounding=rounding,
                                    state_dtype=torch.float32, amsgrad=True, maximize=True)
    assert {r["impl"] for r in opt_f.explain()} == {"reference"}
    f32 = [torch.zeros(3, requires_grad=True)]
    assert ak.AdamW(f32).explain()[0]["impl"] == "fused"
    assert ak.AdamW(f32, state_dtype=torch.bfloat16).explain()[0]["impl"] == "reference"
    _resynced_run(fast, opt_f, ref, opt_r, steps=3, seed=14)


def test_auto_picks_the_c_kernel_for_plain_fp32_and_bf16():
    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, dtype=torch.bfloat16, requires_grad=True)]
    assert [r["impl"] for r in ak.AdamW(params).explain()] == ["cpu", "cpu"]


@pytest.mark.parametrize("decay", DECAYS)
def test_without_a_compiler_fp32_falls_back_to_torch_fused_correctly(monkeypatch, decay):
    monkeypatch.setattr(cpu, "load", lambda: None)
    fast, opt_f, ref, opt_r = _pair(torch.float32, impl="auto", decay=decay, amsgrad=True, maximize=True)
    assert {r["impl"] for r in opt_f.explain()} == {"fused"}
    gen = torch.Generator().manual_seed(15)
    for _ in range(10):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
    for key in ("params",) + MOMENTS:  # torch's kernel orders its fp32 operations its own way
        got = [a.detach() if key == "params" else opt_f.state[a][key] for a in fast]
        want = [b.detach() if key == "params" else opt_r.state[b][key] for b in ref]
        assert_close(torch.cat([t.flatten() for t in got]).double(), torch.cat([t.flatten() for t in want]).double(),
                     torch.float32, msg=key)


def test_steps_advance_in_one_call_and_checkpoint_steps_become_float32():
    from adamkit.torch import kernels

    steps = [torch.tensor(float(k)) for k in range(5)]
    kernels.advance(steps)
    assert [s.item() for s in steps] == [1.0, 2.0, 3.0, 4.0, 5.0]
    wide = [torch.tensor(2.0, dtype=torch.float64)]  # not what the C kernel reads: torch's add instead
    kernels.advance(wide)
    assert wide[0].item() == 3.0 and wide[0].dtype == torch.float64
    p = torch.randn(50, requires_grad=True)
    p.grad = torch.randn(50)
    ours, peer = ak.AdamW([p.detach().clone().requires_grad_()], impl="cpu"), torch.optim.AdamW([p])
    peer.step()
    buffer = io.BytesIO()
    torch.save(peer.state_dict(), buffer)  # a checkpoint: no tensor shared with the peer
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    state["state"][0]["step"] = state["state"][0]["step"].double()  # as torch saves under float64 defaults
    ours.load_state_dict(state)
    q = ours.param_groups[0]["params"][0]
    with torch.no_grad():
        q.copy_(p)
    q.grad = p.grad.clone()
    ours.step()
    peer.step()
    assert ours.state[q]["step"].dtype == torch.float32 and ours.state[q]["step"].item() == 2.0
    torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)
