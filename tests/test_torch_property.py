"""Property test: adamkit.torch against the float64 reference over hyperparameters and shapes."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import adamkit.torch as ak
from reference import AdamRef, SGDRef
from torch_configs import DECAYS, IMPLS


def _check_against_reference(opt, params, refs, rng, lr, tol, steps=15):
    for _ in range(steps):
        for p, ref in zip(params, refs):
            g = rng.standard_normal(p.shape)
            p.grad = torch.tensor(g)
            ref.step(g, lr)
        opt.step()
    for p, ref in zip(params, refs):
        np.testing.assert_allclose(p.detach().numpy(), ref.p, rtol=tol, atol=tol)


shapes = st.lists(st.lists(st.integers(0, 4), max_size=3).map(tuple), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(shapes=shapes, lr=st.floats(1e-4, 0.5), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999),
       eps=st.floats(1e-10, 1e-3), wd=st.floats(0.0, 1.0), decay=st.sampled_from(DECAYS),
       amsgrad=st.booleans(), maximize=st.booleans(), impl=st.sampled_from(IMPLS), seed=st.integers(0, 999))
def test_adamw_matches_reference(shapes, lr, beta1, beta2, eps, wd, decay, amsgrad, maximize, impl, seed):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s) for s in shapes]
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = ak.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd, decay=decay,
                   amsgrad=amsgrad, maximize=maximize, impl=impl)
    refs = [AdamRef(p, beta1, beta2, eps, wd, decay, amsgrad, maximize) for p in p0]
    _check_against_reference(opt, params, refs, rng, lr, tol=1e-10)


@settings(max_examples=40, deadline=None)
@given(shapes=shapes, lr=st.floats(1e-4, 0.5), momentum=st.floats(0.0, 0.99), dampening=st.floats(0.0, 1.0),
       nesterov=st.booleans(), wd=st.floats(0.0, 1.0), decay=st.sampled_from(DECAYS),
       maximize=st.booleans(), impl=st.sampled_from(IMPLS), seed=st.integers(0, 999))
def test_sgd_matches_reference(shapes, lr, momentum, dampening, nesterov, wd, decay, maximize, impl, seed):
    if nesterov:
        momentum, dampening = max(momentum, 0.1), 0.0
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s) for s in shapes]
    params = [torch.tensor(p, requires_grad=True) for p in p0]
    opt = ak.SGD(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                 weight_decay=wd, decay=decay, maximize=maximize, impl=impl)
    refs = [SGDRef(p, momentum, dampening, nesterov, wd, decay, maximize) for p in p0]
    _check_against_reference(opt, params, refs, rng, lr, tol=1e-9)
