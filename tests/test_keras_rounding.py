"""adamkit.keras on bf16/fp16 variables: nearest, Kahan and stochastic rounding, on the backend named by
KERAS_BACKEND; the last test re-runs this file once per other backend in a fresh interpreter."""


import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import adamkit.keras as akk  # noqa: E402
from adamkit.keras import rounding as rnd  # noqa: E402

HALF = ["bfloat16", "float16"]
MODES = ["nearest", "kahan", "stochastic"]


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


@pytest.fixture
def bf16_policy():
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    yield
    keras.config.set_dtype_policy(before)


def _edge_values():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4000) * np.exp(rng.uniform(-12, 12, 4000))).astype("float32")
    x[:8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 7e4, -3.3e38]
    return x


@pytest.mark.parametrize("dtype", HALF)
def test_stream_is_adamkit_torchs_bit_for_bit(dtype):
    torch = pytest.importorskip("torch")
    from adamkit.torch.kernels import rounding as trnd

    x = _edge_values()
    for seed, key, step in [(0, 0, 1), (2**63 + 12345, 7, 99), (42, 147, 2**31 + 5)]:
        want_key = trnd.tensor_key(seed, key, step)
        got_key = rnd.tensor_key(seed, key, ops.convert_to_tensor(np.int64(step)))
        assert int(np.asarray(ops.convert_to_numpy(got_key))) & 0xFFFFFFFF == want_key
        want = trnd.stochastic(torch.tensor(x), getattr(torch, dtype), want_key).float().numpy()
        got = _numpy(rnd.stochastic(ops.convert_to_tensor(x), dtype, got_key))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", HALF)
def test_stochastic_rounding_is_unbiased(dtype):
    x = (np.random.default_rng(1).standard_normal(200) * 3).astype("float32")
    draws = 4000
    k = rnd.tensor_key(0, 1, ops.convert_to_tensor(2))
    rounded = _numpy(rnd.stochastic(ops.convert_to_tensor(np.tile(x, draws)), dtype, k)).reshape(draws, -1)
    lo, hi = np.minimum(rounded.min(0), x), np.maximum(rounded.max(0), x)
    assert ((rounded == lo) | (rounded == hi)).all()  # only the two neighbours of x
    p = np.nan_to_num((x - lo) / (hi - lo))
    sigma = (hi - lo) * np.sqrt(p * (1 - p) / draws)
    assert (np.abs(rounded.mean(0) - x) <= 5 * sigma + 1e-12).all()
    assert (p > 0).mean() > 0.9  # the values are not all exact: the check above has teeth


def _run(mode, dtype="bfloat16", seed=1, steps=6, cls=akk.AdamW, **kwargs):
    rng = np.random.default_rng(3)
    v = keras.Variable(rng.standard_normal((20, 25)).astype("float32"), dtype=dtype)
    opt = cls(learning_rate=1e-3, rounding=mode, rounding_seed=seed, **kwargs)
    for _ in range(steps):
        opt.apply([ops.cast(rng.standard_normal((20, 25)).astype("float32"), dtype)], [v])
    return _numpy(v.value), opt


def test_stochastic_rounding_is_reproducible_per_seed():
    a, opt = _run("stochastic", seed=7)
    b, _ = _run("stochastic", seed=7)
    c, _ = _run("stochastic", seed=8)
    nearest, _ = _run("nearest")
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, nearest)
    again = akk.AdamW.from_config(opt.get_config())  # the seed travels in the config
    assert again.rounding == "stochastic" and again.rounding_seed == 7


@pytest.mark.parametrize("dtype,lr", [("bfloat16", 1e-3), ("float16", 1e-4)])
def test_kahan_keeps_tiny_updates_that_nearest_loses(dtype, lr):
    """100 SGD steps of ``lr`` on a weight of 1: below half an ulp each (below 1: bf16 2**-9, fp16
    2**-12), so nearest never moves; Kahan's p + compensation tracks the fp32 run to well under 1% of
    the change (the compensation is itself rounded to the variable's dtype)."""
    results = {}
    for mode in MODES:
        v = keras.Variable(np.ones(256, "float32"), dtype=dtype)
        opt = akk.SGD(lr, rounding=mode, rounding_seed=0)
        g = ops.ones(256, dtype=dtype)
        for _ in range(100):
            opt.apply([g], [v])
        comps = [c for c in opt._kahan_comps if c is not None]
        assert len(comps) == (mode == "kahan")
        results[mode] = _numpy(v.value) + (_numpy(comps[0].value) if comps else 0)
    exact = np.float32(1) - 100 * np.float32(lr)
    assert (results["nearest"] == 1).all()
    np.testing.assert_allclose(results["kahan"], exact, rtol=0, atol=lr)
    # unbiased: each weight is a sum of 100 coin flips of an ulp (4 to 5 lr): std about 18 lr, so the
    # mean of 256 has a std of about 1.2 lr, and 6 lr is five of it
    assert abs(results["stochastic"].mean() - exact) < 6 * lr


@pytest.mark.filterwarnings("ignore:.*bfloat16:RuntimeWarning")  # adamkit.torch's precision warnings
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("rule", ["adamw", "sgd"])
def test_agrees_with_adamkit_torch(rule, dtype, mode):
    """Same inputs, same seed: adamkit.torch's reference kernel and this backend write the same half values.
    The fp32 math may differ in a last bit between frameworks, which can move a rounding by one ulp;
    each step re-syncs from torch so that such a difference cannot grow."""
    torch = pytest.importorskip("torch")
    import adamkit.torch as akt

    rng = np.random.default_rng(4)
    base = rng.standard_normal(3000).astype("float32")
    tdt = getattr(torch, dtype)
    tp = torch.tensor(base).to(tdt).requires_grad_()
    v = keras.Variable(tp.detach().float().numpy(), dtype=dtype)
    if rule == "adamw":
        opt = akk.AdamW(1e-3, weight_decay=0.01, epsilon=1e-7, rounding=mode, rounding_seed=5)
        topt = akt.AdamW([tp], lr=1e-3, weight_decay=0.01, eps=1e-7, rounding=mode, rounding_seed=5,
                         impl="reference")
    else:
        opt = akk.SGD(0.01, momentum=0.9, rounding=mode, rounding_seed=5)
        topt = akt.SGD([tp], lr=0.01, momentum=0.9, rounding=mode, rounding_seed=5, impl="reference")
    ulp = float(np.finfo(np.float16).eps) if dtype == "float16" else 2.0**-7
    for _ in range(4):
        g = torch.tensor(rng.standard_normal(3000).astype("float32")).to(tdt)
        tp.grad = g
        topt.step()
        opt.apply([ops.cast(g.float().numpy(), dtype)], [v])
        want, got = tp.detach().float().numpy(), _numpy(v.value)
        assert (np.abs(got - want) <= np.maximum(np.abs(want), 1e-3) * ulp * 1.01).all()
        assert (got == want).mean() > 0.995
        v.assign(ops.cast(want, dtype))  # re-sync the param and every state
        i = opt._get_variable_index(v)
        state = topt.state[tp]
        pairs = [(opt._kahan_comps[i], state.get("kahan_comp"))]
        pairs += ([(opt._momentums[i], state["exp_avg"]), (opt._velocities[i], state["exp_avg_sq"])]
                  if rule == "adamw" else [(opt._momentums[i], state["momentum_buffer"])])
        for ours, theirs in pairs:
            if ours is not None:
                ours.assign(ops.cast(theirs.float().numpy(), ours.dtype))


def test_float32_variables_round_exactly_in_every_mode():
    results = [_run(mode, dtype="float32")[0] for mode in MODES]
    assert all(np.array_equal(results[0], r) for r in results[1:])
    assert _run("kahan", dtype="float32")[1]._kahan_comps == [None]  # no compensation where nothing rounds


@pytest.mark.parametrize("call,name", [
    (lambda: akk.AdamW(rounding="up"), "rounding='up'; expected one of 'nearest', 'kahan', 'stochastic'"),
    (lambda: akk.SGD(rounding=None), "rounding"),
    (lambda: akk.Adam(rounding_seed=-1), "rounding_seed"),
    (lambda: akk.Adam(rounding_seed=1.5), "rounding_seed"),
    (lambda: akk.Adam(rounding_seed=True), "rounding_seed"),
    (lambda: akk.Adam(rounding_seed=2**64), "rounding_seed"),
])
def test_bad_rounding_arguments(call, name):
    with pytest.raises(ValueError, match=name.replace("(", r"\(")):
        call()


@pytest.mark.parametrize("cls", [akk.SGD, akk.Adam, akk.AdamW])
def test_config_round_trips_rounding(cls):
    opt = cls(rounding="kahan", rounding_seed=2**63 + 1)
    config = opt.get_config()
    assert config["rounding"] == "kahan" and config["rounding_seed"] == 2**63 + 1
    assert cls.from_config(config).get_config() == config
    default = cls(rounding="stochastic")
    assert cls.from_config(default.get_config()).rounding_seed == default.rounding_seed  # a drawn seed is kept


@pytest.mark.parametrize("mode", ["kahan", "stochastic"])
def test_bf16_model_saved_mid_training_continues_identically(tmp_path, bf16_policy, mode):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32") + 0.1).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    assert model.weights[0].dtype == "bfloat16"
    model.compile(optimizer=akk.AdamW(1e-3, weight_decay=0.01, rounding=mode, rounding_seed=3), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    comps = [v for v in model.optimizer.variables if "kahan_comp" in v.path]
    assert len(comps) == (4 if mode == "kahan" else 0)
    assert all(c.dtype == "bfloat16" for c in comps)
    assert mode != "kahan" or any(np.abs(_numpy(c.value)).max() > 0 for c in comps)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.optimizer.rounding == mode and restored.optimizer.rounding_seed == 3
    assert len(restored.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):  # the compensation came back
        np.testing.assert_array_equal(_numpy(a.value), _numpy(b.value))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    restored.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(np.asarray(a, "float32"), np.asarray(b, "float32"))
