"""Bad input raises a clear error naming the parameter, before anything changes."""

import copy
import math

import numpy as np
import pytest
import torch

import adamkit.numpy as akn
import adamkit.torch as ak

ADAM_BAD = [
    (dict(lr=-1e-3), ValueError, "lr"),
    (dict(lr=math.nan), ValueError, "lr"),
    (dict(betas=(1.0, 0.999)), ValueError, "betas"),
    (dict(betas=(0.9, -0.1)), ValueError, "betas"),
    (dict(eps=-1e-8), ValueError, "eps"),
    (dict(eps=math.inf), ValueError, "eps"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(decay="adamw"), ValueError, "decay.*'l2', 'l1', 'decoupled', 'independent'"),
]
SGD_BAD = [
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(momentum=-0.5), ValueError, "momentum"),
    (dict(nesterov=True), ValueError, "[Nn]esterov"),
    (dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "dampening"),
    (dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (dict(decay="ridge"), ValueError, "decay"),
]
TORCH_ONLY = [(dict(impl="cuda"), ValueError, "impl.*'reference'"), (dict(lr=torch.ones(2)), ValueError, "lr")]


def _cases():
    for kwargs, exc, match in ADAM_BAD + TORCH_ONLY:
        yield "torch", ak.Adam, kwargs, exc, match
        yield "torch", ak.AdamW, kwargs, exc, match
    for kwargs, exc, match in ADAM_BAD:
        yield "numpy", akn.AdamW, kwargs, exc, match
    for kwargs, exc, match in SGD_BAD:
        yield "torch", ak.SGD, kwargs, exc, match
        yield "numpy", akn.SGD, kwargs, exc, match


@pytest.mark.parametrize("backend,cls,kwargs,exc,match", list(_cases()),
                         ids=lambda x: getattr(x, "__name__", None) or str(x))
def test_bad_hyperparameter_raises_at_construction(backend, cls, kwargs, exc, match):
    param = torch.zeros(2, requires_grad=True) if backend == "torch" else np.zeros(2)
    with pytest.raises(exc, match=match):
        cls([param], **kwargs)


@pytest.mark.parametrize("kwargs,exc,match", ADAM_BAD[:-1] + [(dict(decay="x"), ValueError, "decay"),
                                                             (dict(impl="x"), ValueError, "impl")])
def test_bad_group_value_set_later_raises_in_step_and_changes_nothing(kwargs, exc, match):
    a, b = torch.randn(3, requires_grad=True), torch.randn(2, requires_grad=True)
    opt = ak.AdamW([{"params": [a]}, {"params": [b]}], lr=1e-2)
    a.grad, b.grad = torch.ones(3), torch.ones(2)
    opt.step()
    before = copy.deepcopy((a.detach(), b.detach(), opt.state_dict()))
    opt.param_groups[1].update(kwargs)
    with pytest.raises(exc, match=match):
        opt.step()
    torch.testing.assert_close((a.detach(), b.detach()), before[:2], rtol=0, atol=0)
    after = opt.state_dict()
    for key in before[2]["state"]:
        torch.testing.assert_close(after["state"][key], before[2]["state"][key], rtol=0, atol=0)


@pytest.mark.parametrize("cls,exc", [(ak.Adam, RuntimeError), (ak.AdamW, RuntimeError)])
def test_sparse_gradient_raises_and_changes_nothing(cls, exc):
    dense, sparse = torch.ones(3, requires_grad=True), torch.ones(4, requires_grad=True)
    opt = cls([{"params": [dense]}, {"params": [sparse]}], lr=0.1)
    dense.grad = torch.ones(3)
    sparse.grad = torch.ones(4).to_sparse()
    with pytest.raises(exc, match="sparse"):
        opt.step()
    t = torch.ones(4, requires_grad=True)  # torch.optim.Adam(W) raises the same type
    t.grad = torch.ones(4).to_sparse()
    with pytest.raises(exc):
        getattr(torch.optim, cls.__name__)([t], lr=0.1).step()
    torch.testing.assert_close(dense.detach(), torch.ones(3), rtol=0, atol=0)
    assert not opt.state


@pytest.mark.parametrize("cls", [ak.Adam, ak.AdamW, ak.SGD])
def test_duplicate_and_non_tensor_params(cls):
    p = torch.zeros(2, requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):  # torch.optim warns too
        cls([p, p])
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([{"params": [p]}, {"params": [p]}])
    with pytest.raises(TypeError):
        cls([np.zeros(2)])
    with pytest.raises(TypeError):
        cls(p)  # a bare tensor, as torch.optim refuses


def test_numpy_bad_inputs():
    w = np.zeros((2, 2))
    with pytest.raises(ValueError, match="more than once"):
        akn.Adam([w, w])
    with pytest.raises(TypeError, match="params"):
        akn.Adam([np.zeros(2, dtype=np.int64)])
    with pytest.raises(ValueError, match="empty"):
        akn.Adam([])
    opt = akn.Adam([w, np.zeros(3)])
    with pytest.raises(ValueError, match="grads: expected 2"):
        opt.step([np.ones((2, 2))])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.ones((2, 2)), np.ones(4)])
    assert not opt.state and not w.any()


def test_config_file_strings_are_type_errors_at_construction():
    p = [torch.zeros(2, requires_grad=True)]
    for key in ("lr", "weight_decay", "eps"):
        with pytest.raises(TypeError, match=key):
            ak.AdamW(p, **{key: "1e-3"})
        with pytest.raises(TypeError):  # torch.optim refuses them too
            torch.optim.AdamW(p, **{key: "1e-3"})
    ak.AdamW(p, eps=0.0)  # as torch.optim accepts


def test_fused_flag_refuses_devices_torch_refuses():
    with torch.device("meta"):
        w = torch.nn.Parameter(torch.empty(3))
        w.grad = torch.empty(3)
    for cls in (ak.Adam, ak.AdamW):
        with pytest.raises(RuntimeError, match="fused=True"):
            cls([w], fused=True).step()
        with pytest.raises(RuntimeError, match="fused=True"):
            getattr(torch.optim, cls.__name__)([w], fused=True).step()


@pytest.mark.parametrize("cls,kwargs", [(akn.Adam, {}), (akn.AdamW, {"amsgrad": True}),
                                        (akn.SGD, {"momentum": 0.9})])
def test_numpy_read_only_array_raises_before_any_update(cls, kwargs):
    """A read-only parameter (or state array) after writable ones: nothing is updated and no
    step counter advances, rather than a half step."""
    w, frozen = np.zeros((2, 2)), np.zeros(3)
    frozen.flags.writeable = False
    opt = cls([w, frozen], lr=0.1, **kwargs)
    with pytest.raises(ValueError, match=r"params: parameter 1 \(shape \(3,\)\) is read-only"):
        opt.step([np.ones((2, 2)), np.ones(3)])
    assert not w.any() and not opt.state
    opt.step([np.ones((2, 2)), None])  # a parameter without a gradient is not written
    assert w.any()
    state = copy.deepcopy(opt.state_dict())
    before = w.copy()
    for entry in opt.state.values():
        for value in entry.values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
    with pytest.raises(ValueError, match=r"state\[0\]\[.*\] is read-only"):
        opt.step([np.ones((2, 2)), None])
    np.testing.assert_array_equal(w, before)
    assert opt.state_dict()["state"].keys() == state["state"].keys()
    for index, entry in state["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(opt.state[index][key], value)
