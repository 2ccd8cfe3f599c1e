"""Fast kernels (fused, cpu, triton) against the reference kernel, on params and state, many steps.
The C kernel's own cases (rounding modes, state dtypes, its two bf16 paths): test_cpu_kernel.py.

Without a GPU the Triton kernel runs in Triton's interpreter (see conftest.py).
"""


import pytest
import torch

import adamkit.torch as ak
from tolerances import assert_close

pytest.importorskip("triton")

# Odd sizes, one element, empty, scalars, a multi-block tensor (> 2048), dozens of tensors.
SHAPES = [(7, 3), (1,), (0,), (), (5000,), (3, 0, 2), (17,), (4, 1, 3)] + [(i % 5 + 1, i % 3 + 2) for i in range(30)]
FAST = ["fused", "cpu", "triton"]
HALF = [(impl, dtype) for impl in FAST for dtype in (torch.bfloat16, torch.float16)
        if not (impl == "cpu" and dtype == torch.float16)]  # the C kernel takes fp32 and bf16


def _pair(dtype, impl, seed=0, shapes=SHAPES, **kwargs):
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=g).to(dtype) for s in shapes]
    fast = [p.clone().requires_grad_() for p in base]
    ref = [p.clone().requires_grad_() for p in base]
    return fast, ak.AdamW(fast, impl=impl, **kwargs), ref, ak.AdamW(ref, impl="reference", **kwargs)


def _grads(fast, ref, gen):
    for a, b in zip(fast, ref):
        g = torch.randn(a.shape, generator=gen).to(a.dtype)
        a.grad, b.grad = g.clone(), g.clone()


def _check(fast, opt_f, ref, opt_r, dtype, scale=1.0):
    """Params and each state key. In fp32 each is flattened across the whole list: relative
    error is measured over the model, so a near-zero scalar (a cancellation in m) does not
    decide it alone. Half precision is checked tensor by tensor against its own scale."""
    def groups(tensors):
        if dtype in (torch.float32, torch.float64):
            return [torch.cat([t.detach().cpu().double().flatten() for t in tensors])]
        return [t.detach().cpu() for t in tensors]

    assert all(a.dtype == b.dtype for a, b in zip(fast, ref))
    for got, want in zip(groups(fast), groups(ref)):
        assert_close(got, want, dtype, scale, msg="params")
    for key in opt_r.state[ref[0]]:
        got = [opt_f.state[a][key] for a in fast]
        want = [opt_r.state[b][key] for b in ref]
        assert all(g.dtype == w.dtype for g, w in zip(got, want)), key
        for g, w in zip(groups(got), groups(want)):
            assert_close(g, w, dtype if key != "step" else torch.float32, scale, msg=key)


def _resynced_run(fast, opt_f, ref, opt_r, dtype, steps, seed, after_step=None):
    """Step both from equal inputs each time and compare: rounding cannot accumulate, and
    L1's sign(p), which makes free-running trajectories chaotic near p = 0, sees equal p."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
        if after_step:
            after_step()
        _check(fast, opt_f, ref, opt_r, dtype)
        for a, b in zip(fast, ref):
            with torch.no_grad():
                a.copy_(b)
            for key, value in opt_r.state[b].items():
                opt_f.state[a][key].copy_(value)


@pytest.mark.parametrize("impl", ["triton", "reference", "cpu"])
def test_bf16_params_with_fp32_state(impl):
    fast, opt_f, ref, opt_r = _pair(torch.bfloat16, impl, lr=1e-2, state_dtype=torch.float32)
    _resynced_run(fast, opt_f, ref, opt_r, torch.bfloat16, 10, seed=3)
    assert opt_f.state[fast[0]]["exp_avg"].dtype == torch.float32


def test_bf16_state_for_fp32_params_is_close_to_fp32_state():
    fast, opt_f, ref, opt_r = _pair(torch.float32, "triton", lr=1e-2, state_dtype=torch.bfloat16)
    gen = torch.Generator().manual_seed(4)
    for _ in range(20):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
    assert opt_f.state[fast[0]]["exp_avg_sq"].dtype == torch.bfloat16
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=5e-3)


def test_state_dtype_needs_a_kernel_that_keeps_it():
    p = [torch.zeros(3, requires_grad=True)]
    p[0].grad = torch.ones(3)
    with pytest.raises(ValueError, match="state_dtype"):
        ak.AdamW(p, impl="foreach", state_dtype=torch.bfloat16).step()
    with pytest.raises(ValueError, match="state_dtype"):
        ak.AdamW(p, state_dtype=torch.int8)
    ak.AdamW(p, state_dtype=torch.bfloat16).step()  # auto falls back to a kernel that can


@pytest.mark.parametrize("impl", ["fused", "triton"])  # the C kernel refuses the fp64 param: test_torch_plan
def test_non_contiguous_and_mixed_dtypes_in_one_group(impl):
    g = torch.Generator().manual_seed(7)
    base = [torch.randn(8, 6, generator=g).t(),  # dense but transposed
            torch.randn(6, 8, generator=g)[:, ::2],  # strided: not dense
            torch.randn(5, generator=g).to(torch.bfloat16),
            torch.randn(2, 3, generator=g).to(torch.float64)]
    fast = [t.detach().requires_grad_() for t in base]
    ref = [t.detach().clone().requires_grad_() for t in base]  # clone() makes the strided one contiguous
    assert not fast[0].is_contiguous() and not fast[1].is_contiguous()
    opt_f = ak.AdamW(fast, lr=1e-2, impl=impl, decay="l1")
    opt_r = ak.AdamW(ref, lr=1e-2, impl="reference", decay="l1")
    gen = torch.Generator().manual_seed(5)
    for _ in range(10):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
    for a, b in zip(fast, ref):
        assert_close(a.detach(), b.detach(), a.dtype if a.dtype != torch.float64 else torch.float32)


def test_triton_keeps_tensor_lr_on_device_and_matches_reference():
    lr = torch.tensor(0.02)
    fast, opt_f, ref, opt_r = _pair(torch.float32, "triton", lr=lr, decay="independent", weight_decay=0.1)
    for group in opt_f.param_groups + opt_r.param_groups:
        group["reference_lr"] = 0.04  # eta = 0.02 / 0.04 = 0.5
    gen = torch.Generator().manual_seed(6)
    for _ in range(10):
        _grads(fast, ref, gen)
        opt_f.step()
        opt_r.step()
    _check(fast, opt_f, ref, opt_r, torch.float32)


def test_triton_on_cpu_without_interpreter_is_a_clear_error_before_any_change(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    with pytest.raises(ValueError, match="cuda"):  # refused when built
        ak.AdamW([{"params": [a], "impl": "reference"}, {"params": [b], "impl": "triton"}])
    opt = ak.AdamW([{"params": [a], "impl": "reference"}, {"params": [b], "impl": "auto"}])
    opt.param_groups[1]["impl"] = "triton"  # changed by hand later: refused at step(), before any change
    with pytest.raises(ValueError, match="cuda"):
        opt.step()
    assert (a == 0).all() and (b == 0).all() and not opt.state
