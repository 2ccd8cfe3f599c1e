"""StableAdamW and AdEMAMix against their authors' and peers' implementations: free-running over
many steps (never re-synced) on fresh random gradients, whose scale jumps from step to step so that
StableAdamW's clipping and AdEMAMix's slow EMA both matter. Each peer is a test dependency
(``pip install adamkit[dev]``); a test skips, saying which, only where its package is missing."""

import math

import pytest
import torch

import adamkit.torch as ak
from tolerances import assert_close

STEPS = 300
# float64 agrees to ~1e-15 after 300 steps; float32 to ~1e-7 (params) and ~5e-6 (the slow EMA, lerp
# against mul-add): the fp32 norm-wise tolerance is 10x its usual 1e-6.
SCALE = {torch.float64: 1.0, torch.float32: 10.0}
SHAPES = [(17, 5), (64,), (1,), (3, 4, 2)]


def _params(dtype):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in SHAPES]


def _flat(ps):
    return torch.cat([p.detach().flatten() for p in ps])


def _run(opts, lists, steps=STEPS, seed=1, schedulers=(), each=None):
    """Step every optimizer on the same fresh gradients; each gets its own copy (peers modify them)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        scale = math.exp(1.5 * torch.randn((), generator=gen, dtype=torch.float64).item())  # spikes
        grads = [scale * torch.randn(p.shape, generator=gen, dtype=torch.float64) + 0.1 * p.detach().double()
                 for p in lists[0]]
        for ps in lists:
            for p, g in zip(ps, grads):
                p.grad = g.to(p.dtype)
        if each:
            each(grads)
        for opt in opts:
            opt.step()
        for sched in schedulers:
            sched.step()


def _peer(module, install):
    return pytest.importorskip(module, reason=f"the peer is not installed: pip install {install}")


# StableAdamW: optimi (Benjamin Warner's), which the adamkit rule follows term for term.

@pytest.mark.filterwarnings("ignore:You are using weight_decay")  # optimi's advice for decouple_lr
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("decay", ["decoupled", "independent"])
def test_stable_adamw_equals_optimi(decay, dtype):
    optimi = _peer("optimi", "torch-optimi==0.3.3")
    ours, theirs = _params(dtype), _params(dtype)
    kwargs = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1 if decay == "decoupled" else 5e-3)
    opt = ak.StableAdamW(ours, **kwargs, decay=decay, impl="reference")
    peer = optimi.StableAdamW(theirs, **kwargs, decouple_lr=decay == "independent",
                              max_lr=kwargs["lr"] if decay == "independent" else None, foreach=False, triton=False)
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS) for o in (opt, peer)]  # eta moves
    clipped = []

    def count(grads):  # how often the clip engages on the first tensor (after the step reads this gradient)
        state = opt.state.get(ours[0])
        t = (state["step"].item() if state else 0) + 1
        v = state["exp_avg_sq"].double() if state else torch.zeros_like(grads[0])
        v = 0.99 * v + 0.01 * grads[0] ** 2
        clipped.append((grads[0] ** 2 / (v / (1 - 0.99**t)).clamp(min=1e-12)).mean().sqrt().item() > 1)

    _run([opt, peer], [ours, theirs], schedulers=scheds, each=count)
    assert sum(clipped) > STEPS // 10, f"the clip engaged {sum(clipped)} times in {STEPS} steps"
    assert_close(_flat(ours), _flat(theirs), dtype, SCALE[dtype], msg=f"StableAdamW {decay} {dtype}")
    for p, q in zip(ours, theirs):  # optimi keeps the bias-corrected moments
        t = opt.state[p]["step"].item()
        assert_close(opt.state[p]["exp_avg"] / (1 - 0.9**t), peer.state[q]["exp_avg"], dtype, SCALE[dtype])
        assert_close(opt.state[p]["exp_avg_sq"] / (1 - 0.99**t), peer.state[q]["exp_avg_sq"], dtype, SCALE[dtype])


def test_stable_adamw_defaults_are_optimis():
    optimi = _peer("optimi", "torch-optimi==0.3.3")
    ours, theirs = _params(torch.float64), _params(torch.float64)
    opt, peer = ak.StableAdamW(ours, lr=1e-3), optimi.StableAdamW(theirs, lr=1e-3, foreach=False, triton=False)
    _run([opt, peer], [ours, theirs], steps=50)
    assert_close(_flat(ours), _flat(theirs), torch.float64)


# AdEMAMix: pytorch_optimizer (one warm-up horizon, t_alpha_beta3) and bitsandbytes (the
# authors' reference convention: separate t_alpha and t_beta3, fp32 state).

AdEMAMIX = dict(lr=1e-2, betas=(0.9, 0.999, 0.9999), alpha=5.0, eps=1e-8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("decay,warmup,maximize", [("decoupled", 100, False), ("decoupled", None, True),
                                                    ("l2", 100, False), ("independent", 100, False)])
def test_ademamix_equals_pytorch_optimizer(decay, warmup, maximize, dtype):
    po = _peer("pytorch_optimizer", "pytorch_optimizer==4.1.0")
    ours, theirs = _params(dtype), _params(dtype)
    wd = 5e-3 if decay == "independent" else 0.1  # not 1e-3: that is "decoupled" with 0.1 at lr=1e-2
    opt = ak.AdEMAMix(ours, **AdEMAMIX, weight_decay=wd, t_alpha=warmup, t_beta3=warmup, decay=decay,
                      maximize=maximize, impl="reference")
    # weight_decouple: p *= 1 - lr*wd; fixed_decay: p *= 1 - wd, "independent" at a constant lr
    peer = po.AdEMAMix(theirs, **AdEMAMIX, weight_decay=wd, weight_decouple=decay != "l2",
                       fixed_decay=decay == "independent", t_alpha_beta3=warmup, maximize=maximize, foreach=False)
    _run([opt, peer], [ours, theirs])
    assert_close(_flat(ours), _flat(theirs), dtype, SCALE[dtype], msg=f"AdEMAMix {decay} {warmup} {dtype}")
    for p, q in zip(ours, theirs):
        for key in ("exp_avg", "exp_avg_sq", "exp_avg_slow"):
            assert_close(opt.state[p][key], peer.state[q][key], dtype, SCALE[dtype], msg=key)


@pytest.mark.parametrize("t_alpha,t_beta3", [(50, 200), (None, None), (300, None)])
def test_ademamix_equals_bitsandbytes(t_alpha, t_beta3):
    bnb = _peer("bitsandbytes", "bitsandbytes==0.50.2")
    ours, theirs = _params(torch.float32), _params(torch.float32)
    opt = ak.AdEMAMix(ours, **AdEMAMIX, weight_decay=0.1, t_alpha=t_alpha, t_beta3=t_beta3)
    peer = bnb.optim.AdEMAMix(theirs, **AdEMAMIX, weight_decay=0.1, t_alpha=t_alpha, t_beta3=t_beta3)
    _run([opt, peer], [ours, theirs])
    assert_close(_flat(ours), _flat(theirs), torch.float32, 10.0, msg=f"AdEMAMix vs bitsandbytes {t_alpha} {t_beta3}")
    for p, q in zip(ours, theirs):  # bitsandbytes stacks (m1, m2) in state1 and keeps nu in state2
        m1_m2, nu = peer.state[q]["state1"], peer.state[q]["state2"]
        assert_close(opt.state[p]["exp_avg"], m1_m2[0], torch.float32, 10.0)
        assert_close(opt.state[p]["exp_avg_slow"], m1_m2[1], torch.float32, 10.0)
        assert_close(opt.state[p]["exp_avg_sq"], nu, torch.float32, 10.0)
