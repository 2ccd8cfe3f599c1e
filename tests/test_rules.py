"""adamkit.rules against the independent float64 references, on NumPy and torch inputs."""

import itertools
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adamkit import rules
from reference import AdamRef, SGDRef
from tolerances import assert_close

DECAYS = list(rules.DECAY_MODES)
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4)]
STEPS = 120


def _schedule(t):
    """A non-trivial schedule multiplier: warmup then cosine."""
    return min(1.0, (t + 1) / 10) * (0.5 + 0.5 * np.cos(np.pi * t / STEPS))


def _run_adam(to_array, shape, decay, amsgrad, maximize, rng):
    lr0, wd = 3e-2, 0.1
    p0 = rng.standard_normal(shape)
    ref = AdamRef(p0, 0.8, 0.95, 1e-8, wd, decay, amsgrad, maximize)
    p, m, v, vmax = to_array(p0), to_array(np.zeros(shape)), to_array(np.zeros(shape)), None
    for t in range(STEPS):
        g = rng.standard_normal(shape) + 0.5 * ref.p  # depends on the trajectory
        eta = _schedule(t)
        ref.step(g, lr0 * eta, eta)
        p, m, v, vmax = rules.adam(p, to_array(g), m, v, vmax, step=t + 1, lr=lr0 * eta,
                                   beta1=0.8, beta2=0.95, eps=1e-8, amsgrad=amsgrad, maximize=maximize,
                                   **rules.decay_terms(decay, wd, lr0 * eta, eta)._asdict())
    return p, ref


BACKENDS = {"numpy": np.asarray, "torch": lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("decay,amsgrad,maximize",
                         list(itertools.product(DECAYS, [False, True], [False, True])))
@pytest.mark.parametrize("shape", SHAPES)
def test_adam_matches_float64_reference(backend, shape, decay, amsgrad, maximize):
    rng = np.random.default_rng(zlib.crc32(repr((backend, shape, decay, amsgrad, maximize)).encode()))
    p, ref = _run_adam(BACKENDS[backend], shape, decay, amsgrad, maximize, rng)
    assert_close(np.asarray(p), ref.p, torch.float64, msg=f"{decay=} {amsgrad=} {maximize=}")


SGD_CONFIGS = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
               dict(momentum=0.9, nesterov=True)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=str)
@pytest.mark.parametrize("maximize", [False, True])
def test_sgd_matches_float64_reference(backend, decay, config, maximize):
    rng = np.random.default_rng(7)
    to_array = BACKENDS[backend]
    p0 = rng.standard_normal((4, 3))
    ref = SGDRef(p0, weight_decay=0.05, decay=decay, maximize=maximize, **config)
    p, buf = to_array(p0), None
    for t in range(STEPS):
        g = rng.standard_normal((4, 3))
        eta = _schedule(t)
        ref.step(g, 0.01 * eta, eta)
        p, buf = rules.sgd(p, to_array(g), buf, lr=0.01 * eta, maximize=maximize, **config,
                           **rules.decay_terms(decay, 0.05, 0.01 * eta, eta)._asdict())
    assert_close(np.asarray(p), ref.p, torch.float64)


def test_first_moment_unrolls_to_weighted_sum():
    # m_t = (1-b1) * sum_i b1**(t-i) g_i  -- not sum_i (1-b1**i) g_i.
    rng = np.random.default_rng(0)
    gs = rng.standard_normal((50, 3))
    m, v = np.zeros(3), np.zeros(3)
    p = np.zeros(3)
    for t, g in enumerate(gs, 1):
        p, m, v, _ = rules.adam(p, g, m, v, step=t, lr=1e-3, beta1=0.9)
    weights = 0.1 * 0.9 ** np.arange(49, -1, -1)
    np.testing.assert_allclose(m, weights @ gs, rtol=1e-12)


def test_first_adam_step_moves_every_coordinate_by_lr():
    # With m0 = v0 = 0 the bias-corrected first step is lr * sign(g) (up to eps).
    g = np.array([3.0, -1e-3, 250.0])
    p, *_ = rules.adam(np.zeros(3), g, np.zeros(3), np.zeros(3), step=1, lr=0.01, eps=1e-12)
    np.testing.assert_allclose(p, -0.01 * np.sign(g), rtol=1e-8)


def test_weight_decay_zero_makes_every_mode_plain_adam():
    results = []
    for decay in DECAYS:
        r = np.random.default_rng(1)
        p, m, v = r.standard_normal(5), np.zeros(5), np.zeros(5)
        for t in range(1, 60):
            p, m, v, _ = rules.adam(p, r.standard_normal(5), m, v, step=t, lr=1e-2,
                                    **rules.decay_terms(decay, 0.0, 1e-2, 0.3)._asdict())
        results.append(p)
    for p in results[1:]:
        np.testing.assert_array_equal(p, results[0])


def test_decay_terms_reduce_each_mode_to_one_scalar():
    assert rules.decay_terms("l2", 0.1, 1e-3) == (0.1, 0.0, 1.0)
    assert rules.decay_terms("l1", 0.1, 1e-3) == (0.0, 0.1, 1.0)
    assert rules.decay_terms("decoupled", 0.1, 1e-3) == (0.0, 0.0, 1 - 1e-4)
    assert rules.decay_terms("independent", 0.1, 1e-3, eta=0.5) == (0.0, 0.0, 0.95)
    with pytest.raises(ValueError, match="decay"):
        rules.decay_terms("adamw", 0.1, 1e-3)


def test_every_mode_in_the_table_has_a_reference():
    # A mode added to rules.DECAY_MODES without a branch in the float64 references fails here.
    for mode in rules.DECAY_MODES:
        AdamRef(np.ones(2), weight_decay=0.1, decay=mode).step(np.ones(2), 0.1, 0.5)
        SGDRef(np.ones(2), weight_decay=0.1, decay=mode).step(np.ones(2), 0.1, 0.5)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 4), max_size=3).map(tuple),
    lr=st.floats(1e-5, 1.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
    eps=st.floats(1e-12, 1e-2),
    wd=st.floats(0.0, 1.0),
    decay=st.sampled_from(DECAYS),
    amsgrad=st.booleans(),
    maximize=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_adam_property(shape, lr, beta1, beta2, eps, wd, decay, amsgrad, maximize, seed):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape)
    ref = AdamRef(p0, beta1, beta2, eps, wd, decay, amsgrad, maximize)
    p, m, v, vmax = p0, np.zeros(shape), np.zeros(shape), None
    for t in range(1, 21):
        g = rng.standard_normal(shape)
        ref.step(g, lr, 0.7)
        p, m, v, vmax = rules.adam(p, g, m, v, vmax, step=t, lr=lr, beta1=beta1, beta2=beta2,
                                   eps=eps, amsgrad=amsgrad, maximize=maximize,
                                   **rules.decay_terms(decay, wd, lr, 0.7)._asdict())
    np.testing.assert_allclose(p, ref.p, rtol=1e-10, atol=1e-10)
    assert p.shape == shape
