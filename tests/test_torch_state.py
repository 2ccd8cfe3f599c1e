"""Checkpoints: resume bit-identically, and cross-load with torch.optim both ways."""

import copy
import io

import pytest
import torch

import adamkit.torch as ak
from torch_configs import CONFIGS, DECAYS, make_params, set_grads


def _run(opt, params, gen, steps):
    for _ in range(steps):
        set_grads([params], gen)
        opt.step()


def _roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name,ak_cls,torch_cls,kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("direction", ["ours-to-torch", "torch-to-ours"])
def test_cross_load_with_torch_optim(name, ak_cls, torch_cls, kwargs, direction):
    src_cls, dst_cls = (ak_cls, torch_cls) if direction == "ours-to-torch" else (torch_cls, ak_cls)
    params = [p.requires_grad_() for p in make_params(torch.float64)]
    src = src_cls(params, **kwargs)
    gen = torch.Generator().manual_seed(0)
    _run(src, params, gen, 15)
    state = _roundtrip(src.state_dict())
    twin = [p.detach().clone().requires_grad_() for p in params]
    dst = dst_cls(twin, **kwargs)
    dst.load_state_dict(state)
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    _run(src, params, gen_a, 15)
    _run(dst, twin, gen_b, 15)
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_torch_adamw_state_loads_as_decoupled_and_adam_as_l2():
    p = torch.zeros(2, requires_grad=True)
    for torch_cls, expected in [(torch.optim.AdamW, "decoupled"), (torch.optim.Adam, "l2")]:
        opt = ak.Adam([p])
        opt.load_state_dict(copy.deepcopy(torch_cls([p]).state_dict()))
        assert opt.param_groups[0]["decay"] == expected
        assert opt.param_groups[0]["impl"] == "auto"


def test_state_dict_marks_only_decoupled_for_torch():
    p = torch.zeros(2, requires_grad=True)
    for decay, flag in [("decoupled", True), ("independent", True), ("l1", False), ("l2", False)]:
        group = ak.AdamW([p], lr=0.01, weight_decay=0.1, decay=decay).state_dict()["param_groups"][0]
        assert group["decoupled_weight_decay"] is flag
        # torch's equivalent of independent decay 0.1 at reference_lr 0.01 is lr-scaled decay 10
        assert group["weight_decay"] == pytest.approx(10.0 if decay == "independent" else 0.1)


@pytest.mark.parametrize("impl", ["auto", "reference", "triton"])
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("param_dtype,state_dtype", [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)])
def test_resume_keeps_state_dtypes_and_is_bit_identical(impl, decay, param_dtype, state_dtype):
    kwargs = dict(lr=1e-2, weight_decay=0.1, decay=decay, impl=impl, state_dtype=state_dtype)
    params = [p.requires_grad_() for p in make_params(param_dtype)]
    opt = ak.AdamW(params, **kwargs)
    gen = torch.Generator().manual_seed(0)
    _run(opt, params, gen, 5)
    saved = _roundtrip({"params": [p.detach().clone() for p in params], "opt": opt.state_dict(),
                        "gen": gen.get_state()})
    _run(opt, params, gen, 5)
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = ak.AdamW(resumed, **kwargs)
    opt2.load_state_dict(saved["opt"])  # torch's loader would cast the moments to the param dtype
    assert opt2.state[resumed[0]]["exp_avg"].dtype == state_dtype
    gen2 = torch.Generator()
    gen2.set_state(saved["gen"])
    _run(opt2, resumed, gen2, 5)
    for a, b in zip(params, resumed):
        assert torch.equal(a, b)
        for key, value in opt.state[a].items():
            assert torch.equal(value, opt2.state[b][key]), key


def test_fp32_second_moment_of_bf16_params_keeps_decaying_after_a_reload():
    p = torch.ones(4, dtype=torch.bfloat16, requires_grad=True)
    opt = ak.AdamW([p], lr=1e-3, state_dtype=torch.float32)
    p.grad = torch.ones(4, dtype=torch.bfloat16)
    opt.step()
    opt.load_state_dict(_roundtrip(opt.state_dict()))
    v0 = opt.state[p]["exp_avg_sq"].clone()
    for _ in range(100):
        p.grad = torch.zeros(4, dtype=torch.bfloat16)
        opt.step()
    ratio = (opt.state[p]["exp_avg_sq"] / v0).mean().item()
    assert ratio == pytest.approx(0.999**100, rel=1e-5)  # 0.9048; a bf16 state would stay at 1


def test_independent_checkpoint_continues_in_torch_adamw_as_the_same_decay():
    """Exported as torch's lr-scaled decay wd / reference_lr: exact under any schedule."""
    params = [p.requires_grad_() for p in make_params(torch.float64)]
    opt = ak.AdamW(params, lr=1e-2, weight_decay=0.1, decay="independent")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        _run(opt, params, gen, 1)
        sched.step()
    twin = [p.detach().clone().requires_grad_() for p in params]
    peer = torch.optim.AdamW(twin, lr=1e-2)
    peer_sched = torch.optim.lr_scheduler.CosineAnnealingLR(peer, T_max=30)
    peer.load_state_dict(_roundtrip(opt.state_dict()))
    peer_sched.load_state_dict(sched.state_dict())
    assert peer.param_groups[0]["weight_decay"] == pytest.approx(10.0)
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for _ in range(15):
        _run(opt, params, gen_a, 1)
        _run(peer, twin, gen_b, 1)
        sched.step()
        peer_sched.step()
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    back = ak.AdamW([p.detach().clone().requires_grad_() for p in params], decay="decoupled")
    back.load_state_dict(_roundtrip(peer.state_dict()))  # torch kept adamkit's fields: the mode returns
    assert back.param_groups[0]["decay"] == "independent" and back.param_groups[0]["weight_decay"] == 0.1


def test_torch_checkpoint_keeps_what_the_constructor_set():
    p = torch.zeros(2, dtype=torch.bfloat16, requires_grad=True)
    p.grad = torch.ones(2, dtype=torch.bfloat16)
    peer = torch.optim.AdamW([p])
    peer.step()
    opt = ak.AdamW([p], decay="independent", impl="reference", state_dtype=torch.float32, reference_lr=3e-3)
    opt.load_state_dict(_roundtrip(peer.state_dict()))
    group = opt.param_groups[0]
    assert (group["decay"], group["impl"], group["state_dtype"], group["reference_lr"]) == (
        "independent", "reference", torch.float32, 3e-3)
    assert opt.state[p]["exp_avg"].dtype == torch.float32
    # torch's lr-scaled 0.01 becomes the same decay measured against reference_lr
    assert group["weight_decay"] == pytest.approx(0.01 * 3e-3)
