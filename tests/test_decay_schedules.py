"""``decay="independent"`` under every common scheduler, on torch and NumPy: the decay applied at
each step is ``wd * eta_t`` with ``eta_t = lr_t / reference_lr`` in [0, 1], against float64."""

import numpy as np
import pytest
import torch

import adamkit.numpy as akn
import adamkit.torch as ak
from adamkit import schedules

LR, WD, STEPS = 0.1, 0.05, 40
lrs = torch.optim.lr_scheduler

SCHEDULERS = {
    "step": (lambda o: lrs.StepLR(o, step_size=10, gamma=0.5), None),
    "cosine": (lambda o: lrs.CosineAnnealingLR(o, T_max=STEPS), None),
    "linear-warmup": (lambda o: lrs.LinearLR(o, start_factor=0.1, total_iters=10), None),
    "sequential": (lambda o: lrs.SequentialLR(o, [lrs.LinearLR(o, 0.1, total_iters=5),
                                                  lrs.CosineAnnealingLR(o, T_max=STEPS - 5)], milestones=[5]), None),
    "onecycle": (lambda o: lrs.OneCycleLR(o, max_lr=LR, total_steps=STEPS + 1), LR),
    "plateau": (lambda o: lrs.ReduceLROnPlateau(o, factor=0.5, patience=0), None),
    "adamkit-wsd": (lambda o: ak.scheduler(o, schedules.wsd(STEPS, 5, 10)), None),
}


def _zero_grad_run(make_opt, scheduler):
    """Params under zero gradients: Adam moves nothing, so p_t / p_(t-1) is the decay factor."""
    p = torch.full((3,), 2.0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([p])
    sched = scheduler(opt)
    factors, etas = [], []
    for _ in range(STEPS):
        group = opt.param_groups[0]
        etas.append(group["lr"] / group["reference_lr"])
        before = p.detach().clone()
        p.grad = torch.zeros(3, dtype=torch.float64)
        opt.step()
        factors.append((p.detach() / before)[0].item())
        sched.step(1.0) if isinstance(sched, lrs.ReduceLROnPlateau) else sched.step()  # a flat loss
    return np.array(factors), np.array(etas)


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("impl", ["reference", "foreach", "fused"])
def test_independent_decay_is_wd_times_the_multiplier(name, impl):
    scheduler, peak = SCHEDULERS[name]
    factors, etas = _zero_grad_run(
        lambda ps: ak.AdamW(ps, lr=LR, weight_decay=WD, decay="independent", impl=impl, reference_lr=peak), scheduler)
    assert etas.min() >= 0 and etas.max() <= 1 + 1e-12
    np.testing.assert_allclose(1 - factors, WD * etas, rtol=1e-9, atol=1e-15)
    if name == "plateau":  # each reduction of the rate reduces the decay with it
        assert etas[-1] < 0.01


def test_numpy_backend_reads_the_same_multiplier():
    w = np.full(3, 2.0)
    opt = akn.AdamW([w], lr=LR, weight_decay=WD, decay="independent")
    for lr in (0.1, 0.05, 0.01):
        opt.param_groups[0]["lr"] = lr
        before = w.copy()
        opt.step([np.zeros(3)])
        np.testing.assert_allclose(1 - w / before, WD * lr / LR, rtol=1e-12)


def test_a_rate_above_the_reference_warns_once():
    p = torch.zeros(2, requires_grad=True)
    opt = ak.AdamW([p], lr=0.01, weight_decay=WD, decay="independent")
    sched = lrs.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    with pytest.warns(RuntimeWarning, match="above reference_lr") as record:
        for _ in range(40):
            p.grad = torch.zeros(2)
            opt.step()
            sched.step()
    assert len([w for w in record if "reference_lr" in str(w.message)]) == 1


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a_shrink_outside_zero_one_is_computed_as_written_and_warned_once(backend):
    if backend == "torch":
        p = torch.ones(2, requires_grad=True)
        opt = ak.AdamW([p], lr=0.01, weight_decay=0.05, decay="independent")

        def step():
            p.grad = torch.zeros(2)
            opt.step()
    else:
        p = np.ones(2)
        opt = akn.AdamW([p], lr=0.01, weight_decay=0.05, decay="independent")
        step = lambda: opt.step([np.zeros(2)])  # noqa: E731
    opt.param_groups[0]["lr"] = 0.25  # eta 25: 1 - 25 * 0.05 = -0.25
    with pytest.warns(RuntimeWarning, match=r"-0\.25 \(outside \(0, 1\]\).*lr=0\.25.*reference_lr=0\.01") as record:
        step()
        step()
    assert len([w for w in record if "outside" in str(w.message)]) == 1
    np.testing.assert_allclose(np.asarray(p.detach() if backend == "torch" else p), 0.0625, rtol=1e-6)


def test_adamw_at_any_lr_times_wd_steps_as_torch_optim():
    """torch.optim.AdamW(lr=1, weight_decay=5) multiplies by 1 - 5 = -4: the same numbers, and a warning."""
    ours, theirs = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opts = ak.AdamW([ours], lr=1.0, weight_decay=5.0), torch.optim.AdamW([theirs], lr=1.0, weight_decay=5.0)
    with pytest.warns(RuntimeWarning, match="multiplies the weights by -4"):
        for k in range(3):
            for p, opt in zip((ours, theirs), opts):
                p.grad = torch.full((3,), 0.1 * (k + 1))
                opt.step()
    torch.testing.assert_close(ours, theirs)
