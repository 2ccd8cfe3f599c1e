"""The places torch.optim's own test suite found adamkit differing, each against torch.optim."""

import copy

import pytest
import torch

import adamkit.torch as ak
from adamkit.torch import kernels
from tolerances import assert_close

IMPLS = list(kernels.KERNELS)  # every kernel record


def _twins(tensors):
    return [t.clone().requires_grad_() for t in tensors], [t.clone().requires_grad_() for t in tensors]


def _steps(pairs, gen, steps, complex_grads=False):
    for _ in range(steps):
        for ps in zip(*[p for p, _ in pairs]):
            g = torch.randn(ps[0].shape, dtype=ps[0].dtype, generator=gen)
            for p in ps:
                p.grad = g.clone()
        for _, opt in pairs:
            opt.step()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
                                         ("AdamW", dict(lr=1e-2, weight_decay=0.1, maximize=True)),
                                         ("SGD", dict(lr=1e-2, momentum=0.9, weight_decay=0.1))])
def test_complex_params_equal_torch_optim(impl, name, kwargs):
    # SGD has reference and foreach kernels: the plan maps the other names onto them
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(3, 4, dtype=torch.complex64, generator=gen), torch.randn(5, dtype=torch.complex64,
                                                                                generator=gen)]
    ours, theirs = _twins(base)
    pairs = [(ours, getattr(ak, name)(ours, impl=impl, **kwargs)),
             (theirs, getattr(torch.optim, name)(theirs, foreach=False, **kwargs))]
    _steps(pairs, gen, 20)
    for a, b in zip(ours, theirs):
        assert a.dtype == torch.complex64
        assert_close(torch.view_as_real(a.detach()), torch.view_as_real(b.detach()), torch.float32, scale=3)
    state = pairs[0][1].state[ours[0]]
    assert all(t.is_complex() for k, t in state.items() if k != "step")


def test_a_gradient_of_1j_moves_the_imaginary_part():
    z = torch.zeros(1, dtype=torch.complex64, requires_grad=True)
    z.grad = torch.tensor([1j], dtype=torch.complex64)
    ak.Adam([z], lr=0.1, impl="reference").step()
    torch.testing.assert_close(z.detach(), torch.tensor([-0.1j]))


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_checkpoint_with_a_python_float_step_continues(cls):
    ours, theirs = _twins([torch.randn(4)])
    pairs = [(ours, getattr(ak, cls)(ours, lr=1e-2)), (theirs, getattr(torch.optim, cls)(theirs, lr=1e-2))]
    gen = torch.Generator().manual_seed(1)
    _steps(pairs, gen, 3)
    for _, opt in pairs:
        state = copy.deepcopy(opt.state_dict())
        state["state"][0]["step"] = state["state"][0]["step"].item()
        opt.load_state_dict(state)
    _steps(pairs, gen, 3)
    torch.testing.assert_close(ours[0], theirs[0])


def test_sgd_state_dict_round_trips_key_for_key():
    w = torch.zeros(3, requires_grad=True)
    w.grad = torch.ones(3)
    opt = ak.SGD([w], lr=0.1, momentum=0.9)
    opt.step()
    fresh = ak.SGD([w], lr=0.1, momentum=0.9)
    fresh.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert fresh.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    assert "capturable" not in fresh.state_dict()["param_groups"][0]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("impl", ["auto", "reference", "foreach"])
def test_sgd_keeps_the_state_torch_keeps(impl, momentum):
    """No state at all without momentum (torch.optim.SGD's own tests check that any it keeps is non-empty)."""
    ours, theirs = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = ak.SGD([ours], lr=0.1, momentum=momentum, impl=impl)
    peer = torch.optim.SGD([theirs], lr=0.1, momentum=momentum)
    for w, o in ((ours, opt), (theirs, peer)):
        w.grad = torch.ones(3)
        o.step()
    assert {k: set(v) for k, v in opt.state_dict()["state"].items()} == \
        {k: set(v) for k, v in peer.state_dict()["state"].items()}


def test_adamw_stays_decoupled_when_it_loads_an_adam_state_dict():
    w = torch.zeros(3, requires_grad=True)
    for source in (ak.Adam([w]), torch.optim.Adam([w])):
        ours, theirs = ak.AdamW([w]), torch.optim.AdamW([w])
        ours.load_state_dict(copy.deepcopy(source.state_dict()))
        theirs.load_state_dict(copy.deepcopy(source.state_dict()))
        assert ours.param_groups[0]["decay"] == "decoupled"
        assert ours.param_groups[0]["decoupled_weight_decay"] is theirs.param_groups[0]["decoupled_weight_decay"]


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_torch_compile_of_the_default_step_equals_eager(cls):
    ours, eager = _twins([torch.randn(4, 3), torch.randn(3)])
    opt, ref = getattr(ak, cls)(ours, lr=1e-2), getattr(ak, cls)(eager, lr=1e-2)
    compiled = torch.compile(opt.step)
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        for a, b in zip(ours, eager):
            a.grad = b.grad = torch.randn(a.shape, generator=gen)
        compiled()
        ref.step()
    for a, b in zip(ours, eager):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _two_differentiable_steps(module, cls, kwargs, p, g):
    w = p.clone()  # a non-leaf, so the in-place update is recorded
    w.grad = g
    opt = getattr(module, cls)([w], lr=0.1, differentiable=True, **kwargs)
    opt.step()
    w.grad = g * 0.5
    opt.step()
    return w


CASES = [("Adam", dict(weight_decay=0.1, amsgrad=True)), ("AdamW", dict(weight_decay=0.1)),
         ("SGD", dict(momentum=0.9, nesterov=True, weight_decay=0.1))]


@pytest.mark.parametrize("cls,kwargs", CASES)
def test_differentiable_step_passes_gradcheck(cls, kwargs):
    gen = torch.Generator().manual_seed(3)
    inputs = [torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(2)]
    assert torch.autograd.gradcheck(lambda p, g: _two_differentiable_steps(ak, cls, kwargs, p, g), inputs)


@pytest.mark.parametrize("cls,kwargs", [("Adam", dict(weight_decay=0.1)), ("AdamW", dict(weight_decay=0.1))])
def test_differentiable_adam_gives_torch_optim_gradients(cls, kwargs):
    """torch.optim.SGD detaches its first momentum buffer, so its gradient through that path is
    not the derivative (and torch's differentiable AMSGrad fails an in-place check); Adam's is the
    derivative, and there the two agree. torch's differentiable path computes the bias corrections
    from its float32 ``step`` tensor, hence agreement to float32 precision, not float64."""
    gen = torch.Generator().manual_seed(3)
    inputs = [torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(2)]
    ours = torch.autograd.grad(_two_differentiable_steps(ak, cls, kwargs, *inputs).sum(), inputs)
    theirs = torch.autograd.grad(_two_differentiable_steps(torch.optim, cls, kwargs, *inputs).sum(), inputs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_sparse_sgd_equals_torch_optim():
    ours, theirs = _twins([torch.randn(6)])
    opts = [ak.SGD(ours, lr=0.1, momentum=0.9), torch.optim.SGD(theirs, lr=0.1, momentum=0.9)]
    for step in range(4):
        grad = torch.sparse_coo_tensor([[step, 5]], [1.0, -2.0], (6,))
        for p, opt in zip((ours[0], theirs[0]), opts):
            p.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(ours[0], theirs[0])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cls", ["Adam", "SGD"])
def test_grad_scaler_fused_protocol_on_every_impl(impl, cls):
    """GradScaler hands fused optimizers ``grad_scale`` and ``found_inf``: an inf skips the step
    (``step`` unchanged), otherwise the gradient is unscaled. Whatever kernel the plan picks."""
    if cls == "SGD" and impl in ("fused", "cpu", "triton"):
        impl = "auto"
    ours, theirs = _twins([torch.randn(5)])
    opt = getattr(ak, cls)(ours, lr=0.1, fused=impl == "fused" or None, impl="auto" if impl == "fused" else impl)
    ref = getattr(torch.optim, cls)(theirs, lr=0.1, fused=True)
    for found_inf in (0.0, 1.0, 0.0):
        for p, o in ((ours[0], opt), (theirs[0], ref)):
            p.grad = torch.full((5,), 4.0)
            o.grad_scale, o.found_inf = torch.tensor(2.0), torch.tensor(found_inf)
            o.step()
        torch.testing.assert_close(ours[0], theirs[0])
    if cls == "Adam":
        assert opt.state[ours[0]]["step"].item() == ref.state[theirs[0]]["step"].item() == 2


def test_bf16_sgd_momentum_is_as_close_to_float64_as_torch_default():
    gen = torch.Generator().manual_seed(5)
    truth = torch.randn(256, dtype=torch.float64, generator=gen)
    ours, theirs = _twins([truth.to(torch.bfloat16)])
    exact = truth.clone()
    opts = [ak.SGD(ours, lr=0.05, momentum=0.9), torch.optim.SGD(theirs, lr=0.05, momentum=0.9)]
    buf = None
    for _ in range(30):
        g = torch.randn(256, dtype=torch.float64, generator=gen)
        for p in (ours[0], theirs[0]):
            p.grad = g.to(torch.bfloat16)
        for opt in opts:
            opt.step()
        g = g.to(torch.bfloat16).double()
        buf = g if buf is None else 0.9 * buf + g
        exact -= 0.05 * buf
    err = [(p.detach().double() - exact).abs().mean().item() for p in (ours[0], theirs[0])]
    assert err[0] <= err[1], f"adamkit {err[0]:.3g} vs torch {err[1]:.3g}"


def test_betas_mixing_float_and_tensor_is_torchs_value_error():
    w = [torch.zeros(1, requires_grad=True)]
    for module in (ak, torch.optim):
        with pytest.raises(ValueError, match="both floats or both Tensors"):
            module.Adam(w, betas=(0.9, torch.tensor(0.99)))


@pytest.mark.parametrize("name,hypers", [
    ("adam", ("lr", "weight_decay", "betas")), ("adamw", ("lr", "weight_decay", "betas")),
    ("sgd", ("lr", "weight_decay")),
])
def test_tensor_hyperparameters_receive_gradients_as_torch_optims_do(name, hypers):
    """differentiable=True: d(loss after the steps)/d(lr, wd, betas) equals torch.optim's, in float64 (one
    step for SGD, whose in-place momentum buffer a second step's graph refuses in torch.optim)."""
    ours_cls, torch_cls = {"adam": (ak.Adam, torch.optim.Adam), "adamw": (ak.AdamW, torch.optim.AdamW),
                           "sgd": (ak.SGD, torch.optim.SGD)}[name]
    gen = torch.Generator().manual_seed(7)
    start, target = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen,
                                                                                     dtype=torch.float64)

    def grads_through_steps(cls):
        values = dict(lr=0.05, weight_decay=0.1, betas=(0.8, 0.95))
        leaves = {k: (tuple(torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in v) if k == "betas"
                      else torch.tensor(v, dtype=torch.float64, requires_grad=True))
                  for k, v in values.items() if k in hypers}
        kwargs = dict(leaves)  # (torch.optim.SGD's first momentum buffer is detached: no gradient through it)
        p = start.clone().requires_grad_()
        w = p.clone()  # a non-leaf copy the optimizer updates, so the graph runs back to the hyperparameters
        opt = cls([w], differentiable=True, **kwargs)
        for _ in range(1 if name == "sgd" else 2):
            w.grad = torch.autograd.grad(((w - target) ** 2).sum(), w, create_graph=True)[0]
            opt.step()
        inputs = [t for v in leaves.values() for t in (v if isinstance(v, tuple) else (v,))]
        return w.detach(), torch.autograd.grad(((w - target) ** 2).sum(), inputs)

    (ours, our_grads), (theirs, their_grads) = grads_through_steps(ours_cls), grads_through_steps(torch_cls)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in our_grads)
    for a, b in zip(our_grads, their_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
