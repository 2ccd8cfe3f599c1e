"""adamkit.schedules against their torch.optim.lr_scheduler twins, and bad input."""

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

import adamkit.torch as ak
from adamkit import schedules as S
from reference import AdamRef

STEPS = 1000


def _torch_multipliers(make, steps=STEPS):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


TWINS = {
    "step": (S.step_decay(100, 0.5), lambda o: L.StepLR(o, 100, 0.5)),
    "multistep": (S.multistep([100, 400, 401], 0.3), lambda o: L.MultiStepLR(o, [100, 400, 401], 0.3)),
    "exponential": (S.exponential(0.995), lambda o: L.ExponentialLR(o, 0.995)),
    "cosine": (S.cosine(STEPS, 0.1), lambda o: L.CosineAnnealingLR(o, STEPS, eta_min=0.1)),
    "linear": (S.linear(300, 0.2, 1.0), lambda o: L.LinearLR(o, 0.2, 1.0, total_iters=300)),
    "sgdr": (S.sgdr(70, 1, 0.05), lambda o: L.CosineAnnealingWarmRestarts(o, 70, 1, eta_min=0.05)),
    "sgdr-mult": (S.sgdr(30, 2, 0.0), lambda o: L.CosineAnnealingWarmRestarts(o, 30, 2)),
    "warmup-cosine": (S.warmup_cosine(STEPS, 100, 0.0, start_ratio=0.1),
                      lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, total_iters=100),
                                                   L.CosineAnnealingLR(o, STEPS - 100)], milestones=[100])),
}


@pytest.mark.parametrize("name", TWINS)
def test_schedule_equals_torch_twin(name):
    schedule, make = TWINS[name]
    ours = np.array([schedule(k) for k in range(STEPS)])
    np.testing.assert_allclose(ours, _torch_multipliers(make), rtol=0, atol=1e-12)
    # Vectorized evaluation gives the same numbers as the scalar calls.
    np.testing.assert_allclose(schedule(np.arange(STEPS, dtype=np.float64)), ours, rtol=0, atol=1e-12)


def test_wsd_shape():
    s = S.wsd(1000, 100, 200, min_ratio=0.1, shape="sqrt")
    assert s(0) == 0 and s(50) == pytest.approx(0.5) and s(100) == 1 and s(799) == 1 and s(800) == 1
    assert s(1000) == pytest.approx(0.1) and s(900) == pytest.approx(0.1 + 0.9 * (1 - 0.5**0.5))
    values = [s(k) for k in range(800, 1001)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert S.wsd(100, 0, 50, shape="cosine")(75) == pytest.approx(0.5)


def test_conventions_step_zero_is_first_update_and_total_includes_warmup():
    s = S.warmup_cosine(total_steps=100, warmup_steps=10, min_ratio=0.2)
    assert s(0) == 0.0 and s(10) == 1.0 and s(100) == pytest.approx(0.2) and s(5000) == pytest.approx(0.2)
    assert S.warmup(S.constant(), 4)(2) == 0.5


@pytest.mark.parametrize("name", ["cosine", "sgdr-mult", "warmup-cosine", "step"])
def test_independent_decay_follows_each_schedule(name):
    schedule = TWINS[name][0]
    lr0, wd = 0.05, 0.1
    p0 = np.random.default_rng(0).standard_normal((6, 4))
    p = torch.tensor(p0, requires_grad=True)
    opt = ak.AdamW([p], lr=lr0, weight_decay=wd, decay="independent")
    sched = ak.scheduler(opt, schedule)
    ref = AdamRef(p0, weight_decay=wd, decay="independent")
    rng = np.random.default_rng(1)
    for k in range(200):
        g = rng.standard_normal(p.shape)
        p.grad = torch.tensor(g)
        ref.step(g, lr0 * schedule(k), schedule(k))  # decay applied is wd * multiplier
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.detach().numpy(), ref.p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda: S.step_decay(0), "step_size"),
    (lambda: S.step_decay(10, gamma=0.0), "gamma"),
    (lambda: S.exponential(-0.5), "gamma"),
    (lambda: S.multistep([10, 5]), "milestones"),
    (lambda: S.cosine(-5), "total_steps"),
    (lambda: S.cosine(100, min_ratio=1.5), "min_ratio"),
    (lambda: S.warmup_cosine(100, 200), "warmup_steps"),
    (lambda: S.warmup(S.constant(), -1), "warmup_steps"),
    (lambda: S.sgdr(0), "t0"),
    (lambda: S.sgdr(10, t_mult=0), "t_mult"),
    (lambda: S.wsd(100, 60, 50), "warmup_steps"),
    (lambda: S.wsd(100, 10, 50, shape="exp"), "shape"),
    (lambda: S.cosine(10)(-1), "step"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_peak_is_the_largest_multiplier_over_a_long_run():
    steps = np.arange(0, 3000, dtype=np.float64)
    for schedule in [S.constant(), S.cosine(1000), S.warmup_cosine(1000, 100),
                     S.sgdr(100, 2), S.wsd(1000, 50, 200), S.linear(500, 0.2, 1.5),
                     S.step_decay(100, 0.5), S.exponential(0.999)]:
        assert schedule(steps).max() == pytest.approx(schedule.peak())
    assert S.exponential(1.01).peak() is None  # grows without bound
