"""adamkit.numpy: in-place updates, groups, dtypes and checkpoints."""

import copy

import numpy as np
import pytest

import adamkit.numpy as akn
from reference import AdamRef, SGDRef


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_update_keeps_dtype_and_identity(dtype):
    w = np.ones((3, 2), dtype=dtype)
    opt = akn.AdamW([w], lr=0.1)
    before = w
    opt.step([np.ones((3, 2))])
    assert w is before and w.dtype == dtype
    assert opt.state[0]["exp_avg"].dtype == dtype
    np.testing.assert_allclose(w, (1 - 0.1 * 0.01) - 0.1, rtol=1e-6)


def test_per_group_hyperparameters_match_reference():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    opt = akn.AdamW([{"params": [w], "weight_decay": 0.2, "decay": "independent"},
                     {"params": [b], "weight_decay": 0.0, "lr": 0.05}], lr=0.01)
    ref_w = AdamRef(w, weight_decay=0.2, decay="independent")
    ref_b = AdamRef(b, weight_decay=0.0, decay="decoupled")
    for _ in range(100):
        gw, gb = rng.standard_normal(w.shape), rng.standard_normal(b.shape)
        opt.step([gw, gb])
        ref_w.step(gw, 0.01)
        ref_b.step(gb, 0.05)
    np.testing.assert_allclose(w, ref_w.p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, ref_b.p, rtol=1e-12, atol=1e-12)


def test_sgd_momentum_buffer_does_not_alias_gradient():
    w = np.zeros(2)
    g = np.ones(2)
    opt = akn.SGD([w], lr=0.1, momentum=0.9)
    ref = SGDRef(np.zeros(2), momentum=0.9)
    opt.step([g])
    ref.step(np.ones(2), 0.1)
    g[:] = 100.0  # the caller reuses its gradient buffer
    opt.step([np.ones(2)])
    ref.step(np.ones(2), 0.1)
    np.testing.assert_allclose(w, ref.p)


def test_none_gradient_skips_parameter():
    a, b = np.ones(2), np.ones(2)
    opt = akn.Adam([a, b], lr=0.1)
    opt.step([np.ones(2), None])
    assert 1 not in opt.state and (b == 1).all() and (a < 1).all()


@pytest.mark.parametrize("cls,kwargs", [(akn.AdamW, dict(amsgrad=True, decay="l1")),
                                        (akn.SGD, dict(momentum=0.9, nesterov=True))])
def test_state_dict_resume_is_bit_identical(cls, kwargs):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((2, 3)) for _ in range(40)]
    w = rng.standard_normal((2, 3))
    opt = cls([w], lr=0.01, weight_decay=0.1, **kwargs)
    for g in grads[:20]:
        opt.step([g])
    saved, w_saved = copy.deepcopy(opt.state_dict()), w.copy()
    for g in grads[20:]:
        opt.step([g])
    w2 = w_saved.copy()
    opt2 = cls([w2], lr=0.5, **kwargs)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.01
    for g in grads[20:]:
        opt2.step([g])
    np.testing.assert_array_equal(w, w2)


def test_load_state_dict_rejects_mismatch():
    opt = akn.Adam([np.zeros(2)])
    opt.step([np.ones(2)])
    other = akn.Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="param groups"):
        akn.Adam([np.zeros(2), np.zeros(2)]).load_state_dict(opt.state_dict())
