"""adamkit.numpy: in-place updates, groups, dtypes and checkpoints."""

import concurrent.futures
import copy
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adamkit.numpy as akn
from adamkit import rules
from adamkit.numpy import optim
from adamkit.numpy.optim import CHUNK_BYTES
from adamkit.rules import DECAY_MODES
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


@pytest.mark.parametrize("lr", [np.array(0.1), np.float64(0.1)])
def test_lr_may_be_a_numpy_scalar_or_0d_array(lr):
    w, ref = np.ones(3), np.ones(3)
    akn.AdamW([w], lr=lr).step([np.ones(3)])
    akn.AdamW([ref], lr=0.1).step([np.ones(3)])
    np.testing.assert_array_equal(w, ref)


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



@pytest.mark.parametrize("decay", list(DECAY_MODES))
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
def test_chunked_in_place_step_equals_the_rule(decay, amsgrad, maximize):
    """The chunked step against adamkit.rules.adam itself, to 1e-12 in float64: sizes across
    and between chunks, empty, one element, 0-d, Fortran-ordered and strided arrays, and zeros
    of both signs (sign(0) = 0 for L1) in one chunk of many and in a zero-initialized bias."""
    rng = np.random.default_rng(11)
    chunk = CHUNK_BYTES // 8
    shapes = [(0,), (1,), (), (7, 3), (chunk,), (2 * chunk + 5,), (3, chunk // 2 + 1), (17 * chunk + 3,)]
    params = [rng.standard_normal(s) for s in shapes] + [np.asfortranarray(rng.standard_normal((5, 9))),
                                                         rng.standard_normal((6, 8))[:, ::2], np.zeros(chunk + 3)]
    params[7][5 * chunk:5 * chunk + 40:4], params[7][5 * chunk + 1:5 * chunk + 40:4] = 0.0, -0.0
    lrs = [0.01] * 4 + [0.03] * (len(params) - 4)
    opt = akn.AdamW([{"params": params[:4], "lr": 0.01}, {"params": params[4:], "lr": 0.03}],
                    weight_decay=0.1, decay=decay, amsgrad=amsgrad, maximize=maximize, reference_lr=0.02)
    expected = [(p.copy(), np.zeros_like(p), np.zeros_like(p), None) for p in params]
    for step in range(1, 6):
        grads = [rng.standard_normal(p.shape) for p in params]
        kept = [g.copy() for g in grads]
        opt.step(grads)
        for i, (g, lr) in enumerate(zip(grads, lrs)):
            terms = rules.decay_terms(decay, 0.1, lr, rules.schedule_multiplier(lr, 0.02))
            p, m, v, vmax = expected[i]
            expected[i] = rules.adam(p, g, m, v, vmax, step=step, lr=lr, amsgrad=amsgrad, maximize=maximize,
                                     **terms._asdict())
        for g, k in zip(grads, kept):
            np.testing.assert_array_equal(g, k)  # the caller's gradients are only read
        for i, p in enumerate(params):
            want_p, want_m, want_v, want_vmax = expected[i]
            got = opt.state[i]
            for actual, want in [(p, want_p), (got["exp_avg"], want_m), (got["exp_avg_sq"], want_v)] + (
                    [(got["max_exp_avg_sq"], want_vmax)] if amsgrad else []):
                np.testing.assert_allclose(actual, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(jobs=st.lists(st.tuples(st.integers(0, 3000), st.sampled_from([np.float32, np.float64])), max_size=8),
       piece_bytes=st.sampled_from([8, 64, 1000, 4096]))
def test_a_steps_pieces_cover_every_element_once(jobs, piece_bytes):
    """The pieces threads take: each job's elements in order, once, cut every ``piece_bytes``."""
    jobs = [([np.empty(n, dtype)], None) for n, dtype in jobs]
    covered = [0] * len(jobs)
    for j, lo, hi in optim._pieces(jobs, piece_bytes):
        span = piece_bytes // jobs[j][0][0].itemsize
        assert lo == covered[j] < hi <= lo + span and lo % span == 0
        covered[j] = hi
    assert covered == [arrays[0].size for arrays, _ in jobs]


@pytest.mark.parametrize("decay", ["decoupled", "l1"])
def test_a_step_shared_among_threads_changes_no_bit(monkeypatch, decay):
    """Float32 and float64 groups, tensors long and short, stepped on 1, 2, 3 and 5 threads: the
    same bits every time, and with more than one thread every piece runs off the caller's thread."""
    rng = np.random.default_rng(5)
    sizes = {np.float32: [2_500_001, 17, 3_000_000, 0], np.float64: [400_001, 3]}  # 25 MB: 6 pieces and more
    start = {dtype: [rng.standard_normal(n).astype(dtype) for n in ns] for dtype, ns in sizes.items()}
    grads = [[rng.standard_normal(n).astype(dtype) for dtype, ns in sizes.items() for n in ns] for _ in range(3)]
    runs, step = {}, optim._adam_in_place
    for threads in [1, 2, 3, 5]:
        callers = []

        def recorded(*args, _callers=callers):
            _callers.append(threading.get_ident())
            step(*args)

        pool = concurrent.futures.ThreadPoolExecutor(threads)
        monkeypatch.setattr(optim, "_threads", lambda n=threads: n)
        monkeypatch.setattr(optim, "_pool", lambda p=pool: p)
        monkeypatch.setattr(optim, "_adam_in_place", recorded)
        params = {dtype: [p.copy() for p in ps] for dtype, ps in start.items()}
        opt = akn.AdamW([{"params": ps} for ps in params.values()], lr=0.01, weight_decay=0.1, decay=decay,
                        amsgrad=True)
        for g in grads:
            opt.step(g)
        pool.shutdown()
        if threads > 1:
            assert len(callers) > 3 * 5  # more pieces than the five non-empty tensors: the long ones were cut
            assert threading.get_ident() not in callers
        runs[threads] = [a for ps in params.values() for a in ps] + [
            a for state in opt.state.values() for a in state.values() if isinstance(a, np.ndarray)]
    for threads in [2, 3, 5]:
        for got, want in zip(runs[threads], runs[1], strict=True):
            np.testing.assert_array_equal(got, want)
