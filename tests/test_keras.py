"""adamkit.keras on the backend named by KERAS_BACKEND (default tensorflow); the last test
re-runs this file once per other backend in a fresh interpreter (Keras reads it at import)."""

import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import adamkit.keras as akk  # noqa: E402
from adamkit import rules, schedules  # noqa: E402
from reference import AdamRef, SGDRef  # noqa: E402

DECAYS = list(rules.DECAY_MODES)
SHAPES = [(4, 3), (5,), (2, 2, 2)]
STEPS = 60


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def _train(opt, shapes=SHAPES, steps=STEPS, seed=0):
    """Apply seeded random gradients; returns the initial values, gradients and variables."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype("float32") for s in shapes]
    variables = [keras.Variable(x, name=f"v{i}") for i, x in enumerate(init)]
    grads = [[rng.standard_normal(s).astype("float32") for s in shapes] for _ in range(steps)]
    for gs in grads:
        opt.apply([ops.convert_to_tensor(g) for g in gs], variables)
    return init, grads, [_numpy(v.value) for v in variables]


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_float64_reference_and_adamkit_torch(decay, amsgrad):
    torch = pytest.importorskip("torch")
    import adamkit.torch as akt

    lr = schedules.cosine(STEPS, 0.1)
    opt = akk.Adam(akk.LearningRateSchedule(lr, 0.02), epsilon=1e-8, weight_decay=0.1, decay=decay,
                   amsgrad=amsgrad)
    init, grads, got = _train(opt)
    params = [torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in init]
    t_opt = akt.Adam(params, lr=0.02, weight_decay=0.1, decay=decay, amsgrad=amsgrad)
    t_sched = akt.scheduler(t_opt, lr)
    refs = [AdamRef(x, weight_decay=0.1, decay=decay, amsgrad=amsgrad) for x in init]
    for k, gs in enumerate(grads):
        for p, ref, g in zip(params, refs, gs):
            p.grad = torch.tensor(g)
            ref.step(g, 0.02 * lr(k), lr(k))
        t_opt.step()
        t_sched.step()
    for value, p, ref in zip(got, params, refs):
        np.testing.assert_allclose(value, ref.p, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(value, p.detach().numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_float64_reference(decay, momentum, nesterov):
    opt = akk.SGD(0.05, momentum=momentum, nesterov=nesterov, weight_decay=0.1, decay=decay)
    init, grads, got = _train(opt)
    refs = [SGDRef(x, momentum=momentum, nesterov=nesterov, weight_decay=0.1, decay=decay) for x in init]
    for gs in grads:
        for ref, g in zip(refs, gs):
            ref.step(g, 0.05)
    for value, ref in zip(got, refs):
        np.testing.assert_allclose(value, ref.p, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("cls,peer,kwargs", [
    (akk.Adam, keras.optimizers.Adam, {}),
    (akk.Adam, keras.optimizers.Adam, {"amsgrad": True}),
    (akk.AdamW, keras.optimizers.AdamW, {}),
    (akk.AdamW, keras.optimizers.AdamW, {"weight_decay": 0.1, "amsgrad": True}),
])
def test_epsilon_hat_matches_keras(cls, peer, kwargs):
    _, _, ours = _train(cls(learning_rate=0.01, epsilon_hat=True, **kwargs))
    _, _, theirs = _train(peer(learning_rate=0.01, **kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_decays_once_and_respects_exclusions():
    opt = akk.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    w, b = keras.Variable(np.ones(2, "float32"), name="kernel"), keras.Variable(np.ones(2, "float32"), name="bias")
    opt.apply([ops.zeros(2), ops.zeros(2)], [w, b])  # zero gradient: only the decay moves w
    np.testing.assert_allclose(_numpy(w.value), 1 - 0.1 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(_numpy(b.value), 1.0)


def test_model_saved_mid_training_continues_identically(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 1)).astype("float32")
    y = (2 * x + 0.1 * rng.standard_normal((64, 1))).astype("float32")

    def make():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, activation="tanh",
                                  kernel_initializer=akk.HeNormal(seed=1)), keras.layers.Dense(1)])
        lr = akk.LearningRateSchedule(schedules.warmup_cosine(40, 5), 0.05)
        model.compile(optimizer=akk.AdamW(lr, weight_decay=0.01, decay="independent", amsgrad=True), loss="mse")
        return model

    model = make()
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.optimizer, akk.AdamW) and restored.optimizer.decay_mode == "independent"
    assert int(_numpy(restored.optimizer.iterations)) == 12
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    restored.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_schedule_in_keras_ops_equals_numpy():
    for s in [schedules.warmup_cosine(100, 10, 0.1), schedules.sgdr(10, 2), schedules.wsd(100, 10, 30, shape="sqrt"),
              schedules.multistep([10, 50], 0.5), schedules.exponential(0.97)]:
        lr = akk.LearningRateSchedule(s, 2.0)
        got = [float(_numpy(lr(k))) for k in range(0, 100, 7)]
        np.testing.assert_allclose(got, [2.0 * s(k) for k in range(0, 100, 7)], rtol=1e-5, atol=1e-6)
        again = akk.LearningRateSchedule.from_config(lr.get_config())
        assert again.schedule == s


@pytest.mark.parametrize("cls,kwargs,std", [
    (akk.HeNormal, {}, lambda fi, fo: (2 / fi) ** 0.5),
    (akk.HeNormal, {"truncated": False}, lambda fi, fo: (2 / fi) ** 0.5),
    (akk.XavierNormal, {}, lambda fi, fo: (2 / (fi + fo)) ** 0.5),
    (akk.XavierUniform, {}, lambda fi, fo: (2 / (fi + fo)) ** 0.5),
    (akk.HeUniform, {}, lambda fi, fo: (2 / fi) ** 0.5),
])
def test_initializers_use_keras_layout(cls, kwargs, std):
    shape = (3, 3, 32, 64)  # (*kernel, in, out): fan_in = 288, fan_out = 576
    values = _numpy(cls(seed=0, **kwargs)(shape))
    assert values.shape == shape
    assert values.std() == pytest.approx(std(288, 576), rel=0.03)
    if kwargs.get("truncated", True) and "Normal" in cls.__name__:
        assert np.abs(values).max() <= 2 * std(288, 576) / 0.8796 + 1e-6
    np.testing.assert_array_equal(values, _numpy(cls(seed=0, **kwargs)(shape)))
    assert cls.from_config(cls(seed=3, **kwargs).get_config()).get_config() == cls(seed=3, **kwargs).get_config()


@pytest.mark.parametrize("call,name", [
    (lambda: akk.Adam(learning_rate=-1.0), "learning_rate"),
    (lambda: akk.Adam(beta_1=1.5), "beta_1"),
    (lambda: akk.Adam(beta_2=-0.1), "beta_2"),
    (lambda: akk.Adam(epsilon=-1e-7), "epsilon"),
    (lambda: akk.AdamW(weight_decay=-0.1), "weight_decay"),
    (lambda: akk.AdamW(decay="ridge"), "decay"),
    (lambda: akk.SGD(momentum=-0.5), "momentum"),
])
def test_bad_hyperparameters(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_linear_regression_example_fits_the_line():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the example is written with tf.GradientTape")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import keras_linear_regression as example

    for fit in (example.fit_with_gradient_tape, example.fit_with_model_fit):
        slope, intercept = fit(epochs=200)
        assert abs(slope - 2) < 0.15 and abs(intercept) < 0.3, fit.__name__


@pytest.mark.skipif(os.environ.get("ADAMKIT_KERAS_CHILD") == "1", reason="already a per-backend run")
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_other_backend(backend):
    if backend == keras.backend.backend():
        pytest.skip("this process runs that backend")
    pytest.importorskip({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend])
    env = {**os.environ, "KERAS_BACKEND": backend, "ADAMKIT_KERAS_CHILD": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", __file__],
                         env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
