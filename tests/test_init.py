"""adamkit.init: fans as torch.nn.init, distributions, seeds, layouts and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from adamkit import init
from adamkit.torch import init_model

SHAPES = {"linear": (64, 32), "conv1d": (16, 8, 5), "conv2d": (16, 8, 3, 3), "conv3d": (8, 4, 3, 3, 3)}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_fans_equal_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fans(shape) == expected
    # The same weight stored Keras-style, (*kernel, in, out), has the same fans.
    keras_shape = shape[2:] + (shape[1], shape[0])
    assert init.fans(keras_shape, layout="keras") == expected


@pytest.mark.parametrize("name", ["linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"])
def test_gain_equals_torch(name):
    assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.2))


# (adamkit initializer, kwargs, torch.nn.init twin, its kwargs, kind, scale from fans)
TWINS = [
    (init.xavier_uniform, {}, torch.nn.init.xavier_uniform_, {}, "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
    (init.xavier_normal, {"gain": 2.0}, torch.nn.init.xavier_normal_, {"gain": 2.0}, "normal",
     lambda fi, fo: 2 * math.sqrt(2 / (fi + fo))),
    (init.he_uniform, {"nonlinearity": "relu"}, torch.nn.init.kaiming_uniform_, {"nonlinearity": "relu"},
     "uniform", lambda fi, fo: math.sqrt(6 / fi)),
    (init.he_normal, {"mode": "fan_out"}, torch.nn.init.kaiming_normal_, {"mode": "fan_out"}, "normal",
     lambda fi, fo: math.sqrt(2 / fo)),
]


@pytest.mark.parametrize("ours,kw,twin,twin_kw,kind,scale", TWINS, ids=[t[0].__name__ for t in TWINS])
def test_torch_path_equals_torch_nn_init_at_same_seed(ours, kw, twin, twin_kw, kind, scale):
    a, b = torch.empty(256, 128), torch.empty(256, 128)
    ours(a, generator=torch.Generator().manual_seed(3), **kw)
    twin(b, generator=torch.Generator().manual_seed(3), **twin_kw)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("ours,kw,twin,twin_kw,kind,scale", TWINS, ids=[t[0].__name__ for t in TWINS])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_samples_follow_the_formula(ours, kw, twin, twin_kw, kind, scale, backend):
    shape = (400, 100, 3)
    target = torch.empty(shape) if backend == "torch" else np.empty(shape, dtype=np.float32)
    x = np.asarray(ours(target, seed=11, **kw)).ravel().astype(np.float64)
    s = scale(*init.fans(shape))
    if kind == "uniform":
        assert np.abs(x).max() <= s * (1 + 1e-6)
        assert np.abs(x).max() >= 0.999 * s  # bounds nearly reached
        dist = stats.uniform(-s, 2 * s)
        assert x.std() == pytest.approx(s / math.sqrt(3), rel=0.02)
    else:
        dist = stats.norm(0, s)
        assert x.std() == pytest.approx(s, rel=0.02)
    assert stats.kstest(x[:20000], dist.cdf).pvalue > 1e-3


@pytest.mark.parametrize("fn", [init.he_normal, init.xavier_normal])
def test_truncated_normal_keeps_std_and_cuts_at_two_sigma(fn):
    for target in (torch.empty(500, 400), np.empty((500, 400))):
        x = np.asarray(fn(target, truncated=True, seed=5)).ravel()
        std = (2 / 400) ** 0.5 if fn is init.he_normal else (2 / 900) ** 0.5
        sigma = std / init.TRUNCATED_STD
        assert np.abs(x).max() <= 2 * sigma * (1 + 1e-6)
        assert x.std() == pytest.approx(std, rel=0.02)
        dist = stats.truncnorm(-2, 2, scale=sigma)
        assert stats.kstest(x[:20000], dist.cdf).pvalue > 1e-3


def test_torch_and_numpy_paths_agree_in_distribution():
    a = init.he_uniform(torch.empty(300, 200), seed=1).numpy().ravel()
    b = init.he_uniform(np.empty((300, 200)), seed=1).ravel()
    assert stats.ks_2samp(a[:20000], b[:20000]).pvalue > 1e-3
    assert not np.allclose(a, b)  # independent draws, same law


def test_same_seed_same_values_and_shape_tuple_returns_float32():
    a = init.xavier_normal((32, 16), seed=4)
    b = init.xavier_normal((32, 16), seed=4)
    c = init.xavier_normal((32, 16), seed=5)
    assert a.dtype == np.float32 and a.shape == (32, 16)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    t1, t2 = torch.empty(8, 4), torch.empty(8, 4)
    torch.testing.assert_close(init.he_normal(t1, seed=2), init.he_normal(t2, seed=2))


def test_in_place_targets_and_simple_fills():
    arr = np.ones((3, 4))
    assert init.zeros(arr) is arr and not arr.any()
    u = init.uniform(np.empty(1000), -0.5, 0.25, seed=0)
    assert u.min() >= -0.5 and u.max() <= 0.25
    n = init.normal(torch.empty(10000), 3.0, 0.5, seed=0)
    assert n.mean().item() == pytest.approx(3.0, abs=0.03)


@pytest.mark.parametrize("call,match", [
    (lambda: init.xavier_uniform(np.empty(5)), "at least 2 dimensions"),
    (lambda: init.he_normal(torch.empty(())), "at least 2 dimensions"),
    (lambda: init.he_normal((0, 4)), "zero fan"),
    (lambda: init.normal((2, 2), std=-1.0), "std"),
    (lambda: init.he_normal((2, 2), nonlinearity="swish"), "nonlinearity"),
    (lambda: init.he_uniform((2, 2), mode="fan_avg"), "mode"),
    (lambda: init.xavier_normal((2, 2), layout="jax"), "layout"),
    (lambda: init.uniform((2, 2), 1.0, 0.0), "a <= b"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_init_model_applies_scheme_and_resets_norms():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                              torch.nn.Linear(8, 4), torch.nn.LayerNorm(4), torch.nn.Embedding(10, 4))
    with torch.no_grad():
        net[1].weight.fill_(7.0)
    summary = init_model(net, "he_normal", seed=0, nonlinearity="relu")
    assert summary == {"0": "Conv2d: weight he_normal, bias zeros", "1": "BatchNorm2d: weight 1, bias 0",
                       "3": "Linear: weight he_normal, bias zeros", "4": "LayerNorm: weight 1, bias 0",
                       "5": "Embedding: weight he_normal"}
    assert (net[1].weight == 1).all() and not net[0].bias.any()


def test_init_model_is_reproducible_and_rejects_unknown_scheme():
    a, b = torch.nn.Linear(50, 40), torch.nn.Linear(50, 40)
    init_model(a, "xavier_uniform", seed=3)
    init_model(b, "xavier_uniform", seed=3)
    torch.testing.assert_close(a.weight, b.weight)
    init_model(a, torch.nn.init.orthogonal_)
    eye = a.weight.T @ a.weight if a.weight.shape[0] >= a.weight.shape[1] else a.weight @ a.weight.T
    torch.testing.assert_close(eye, torch.eye(eye.shape[0]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="weights"):
        init_model(a, "glorot")
