"""Identities between decay modes and between backends."""

import numpy as np
import pytest
import torch

import adamkit.numpy as akn
import adamkit.torch as ak
from reference import AdamRef
from tolerances import assert_close
from torch_configs import DECAYS, IMPLS, make_params, set_grads

SCHEDULERS = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=60, eta_min=1e-5),
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=61, cycle_momentum=False),
    "linear": lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=20),
}
PEAK = {"onecycle": 0.05}  # schedules that rise above the constructor's lr: their peak is the reference


def _train(make_opt, steps=60, sched=None, dtype=torch.float64, seed=0):
    params = [p.requires_grad_() for p in make_params(dtype)]
    opt = make_opt(params)
    scheduler = SCHEDULERS[sched](opt) if sched else None
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        set_grads([params], gen)
        opt.step()
        if scheduler:
            scheduler.step()
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_weight_decay_makes_every_mode_plain_adam(impl):
    plain, _ = _train(lambda ps: ak.Adam(ps, lr=1e-2, weight_decay=0.0, impl=impl), sched="cosine")
    for decay in DECAYS:
        got, _ = _train(lambda ps, decay=decay: ak.AdamW(ps, lr=1e-2, weight_decay=0.0, decay=decay, impl=impl),
                        sched="cosine")
        for a, b in zip(got, plain):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sched", SCHEDULERS)
def test_independent_equals_decoupled_with_wd_over_lr0(sched, impl):
    lr, wd = 0.02, 1e-3
    indep, opt = _train(lambda ps: ak.AdamW(ps, lr=lr, weight_decay=wd, decay="independent", impl=impl,
                                            reference_lr=PEAK.get(sched)), sched=sched)
    lr0 = opt.param_groups[0]["reference_lr"]
    coupled, _ = _train(lambda ps: ak.AdamW(ps, lr=lr, weight_decay=wd / lr0, decay="decoupled", impl=impl),
                        sched=sched)
    for a, b in zip(indep, coupled):
        assert_close(a, b, torch.float64, scale=100)  # rounding of wd/lr0 vs eta*wd


@pytest.mark.parametrize("sched", SCHEDULERS)
def test_independent_decay_follows_scheduler_multiplier(sched):
    """Against the float64 reference driven by the scheduler's own multiplier."""
    lr0, wd = 0.02, 0.05
    p0 = make_params(torch.float64)
    params = [p.clone().requires_grad_() for p in p0]
    opt = ak.AdamW(params, lr=lr0, weight_decay=wd, decay="independent", reference_lr=PEAK.get(sched))
    scheduler = SCHEDULERS[sched](opt)
    lr0 = opt.param_groups[0]["reference_lr"]
    refs = [AdamRef(p.numpy(), weight_decay=wd, decay="independent") for p in p0]
    gen = torch.Generator().manual_seed(4)
    for _ in range(60):
        set_grads([params], gen)
        lr = opt.param_groups[0]["lr"]
        for ref, p in zip(refs, params):
            ref.step(p.grad.numpy(), lr, lr / lr0)
        opt.step()
        scheduler.step()
    for ref, p in zip(refs, params):
        assert_close(p.detach(), ref.p, torch.float64)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_backend_equals_torch_backend(decay, amsgrad, dtype):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(4, 3), (3,), ()]]
    tensors = [torch.tensor(a).requires_grad_() for a in arrays]
    a_opt = akn.AdamW(arrays, lr=1e-2, weight_decay=0.1, decay=decay, amsgrad=amsgrad)
    t_opt = ak.AdamW(tensors, lr=1e-2, weight_decay=0.1, decay=decay, amsgrad=amsgrad, impl="reference")
    for step in range(80):
        grads = [rng.standard_normal(a.shape).astype(dtype) for a in arrays]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        lr = 1e-2 * (0.5 if step >= 40 else 1.0)  # a manual schedule on both
        a_opt.param_groups[0]["lr"] = lr
        t_opt.param_groups[0]["lr"] = lr
        a_opt.step(grads)
        t_opt.step()
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    for a, t in zip(arrays, tensors):
        assert a.dtype == dtype
        assert_close(torch.from_numpy(np.asarray(a)), t.detach(), tdtype)
