"""The plan: which kernel updates each tensor, on every impl x device x dtype x layout.

CUDA is stood in for by ``meta`` tensors (no GPU in CI): the plan, the placement of
``step`` and the calls each kernel receives are checked, everything short of the arithmetic.
"""

import itertools
import types

import pytest
import torch

import adamkit.torch as ak
from adamkit.torch import kernels

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
LAYOUTS = ["dense", "transposed", "strided"]


def _param(dtype, layout, device="cpu"):
    base = torch.zeros(6, 4, dtype=dtype, device=device)
    p = {"dense": base, "transposed": base.t(), "strided": base[:, ::2]}[layout]
    p.requires_grad_()
    p.grad = torch.zeros(p.shape, dtype=dtype, device=device)  # contiguous, like autograd's
    return p


@pytest.fixture
def as_cuda(monkeypatch):
    """Plan meta tensors as CUDA ones, and record what each kernel is handed."""
    calls = []
    monkeypatch.setattr(kernels, "device_type", lambda t: "cuda" if t.device.type == "meta" else t.device.type)

    def recorder(name):
        def adam(params, grads, m, v, vmax, steps, h, **amp):
            calls.append((name, [p.dtype for p in params], [s.device.type for s in steps], [t.dtype for t in m]))

        def sgd(params, grads, bufs, h):
            calls.append((name, [p.dtype for p in params], [], []))
            return [torch.empty_like(p) for p in params]
        return types.SimpleNamespace(adam=adam, sgd=sgd, load=lambda: {torch.float32: None})

    for name in kernels.KERNELS:
        monkeypatch.setitem(kernels._MODULES, name, recorder(name))
    return calls


def _check_row(row, impl, p, state_dtype):
    kernel = kernels.KERNELS[row["impl"]]
    assert kernel.runs_on(row["device"]) and p.dtype in kernel.dtypes
    if kernel.flat:
        assert kernels.flat_ok(p, [p.grad]), "a flat kernel got a strided tensor"
    if impl not in ("auto", row["impl"]):
        assert row["impl"] == "reference" and "strided" in row["reason"]
    if state_dtype not in (None, p.dtype):
        assert kernel.keeps(state_dtype, p.dtype)
    assert row["step_device"] == (row["device"] if kernel.step_on_device else "cpu")


@pytest.mark.parametrize("impl", kernels.IMPLS)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("decay", ["decoupled", "l1"])
@pytest.mark.parametrize("state_dtype", [None, torch.float32])
def test_plan_places_every_tensor_where_a_kernel_takes_it(impl, device, decay, state_dtype, as_cuda):
    params = [_param(dtype, layout, "meta" if device == "cuda" else "cpu")
              for dtype, layout in itertools.product(DTYPES, LAYOUTS)]
    try:  # refused when built, never at the first step
        opt = ak.AdamW(params, impl=impl, decay=decay, state_dtype=state_dtype)
        rows = opt.explain()
    except ValueError as e:  # an explicit impl that cannot take some tensor says which and why
        assert impl != "auto" and f"impl={impl!r}" in str(e)
        return
    assert [r["param"] for r in rows] == list(range(len(params)))
    for row, p in zip(rows, params):
        _check_row(row, impl, p, state_dtype)
    opt.step()
    for row, p in zip(rows, params):  # step lives where the planned kernel reads it
        assert opt.state[p]["step"].device.type == ("meta" if row["step_device"] == "cuda" else "cpu")
        assert opt.state[p]["exp_avg"].dtype == (state_dtype or p.dtype)
    called = {name for name, *_ in as_cuda}
    assert called == {r["impl"] for r in rows}


def test_auto_on_cuda_is_torch_fused_except_l1_and_state_dtype(as_cuda):
    p = _param(torch.float32, "dense", "meta")
    assert [r["impl"] for r in ak.AdamW([p]).explain()] == ["fused"]
    assert [r["impl"] for r in ak.Adam([p], weight_decay=0.1).explain()] == ["fused"]
    assert [r["impl"] for r in ak.AdamW([p], decay="independent").explain()] == ["fused"]
    assert [r["impl"] for r in ak.AdamW([p], decay="l1").explain()] == ["triton"]
    assert [r["impl"] for r in ak.AdamW([p], state_dtype=torch.bfloat16).explain()] == ["triton"]
    assert [r["impl"] for r in ak.SGD([p], momentum=0.9).explain()] == ["foreach"]


def test_auto_on_cpu():
    f32, bf16 = _param(torch.float32, "dense"), _param(torch.bfloat16, "dense")
    f64, strided = _param(torch.float64, "dense"), _param(torch.float32, "strided")
    rows = ak.AdamW([f32, bf16, f64, strided], decay="l1").explain()
    assert [r["impl"] for r in rows] == ["cpu", "cpu", "fused", "reference"]
    assert [r["impl"] for r in ak.AdamW([f32, bf16]).explain()] == ["cpu", "cpu"]
    assert [r["impl"] for r in ak.SGD([f32, bf16]).explain()] == ["foreach", "reference"]
    assert "step_device" in str(ak.AdamW([f32]).explain()).splitlines()[0]


@pytest.mark.parametrize("flags,impl", [(dict(foreach=False), "reference"), (dict(foreach=True), "foreach"),
                                        (dict(fused=True), "fused"), (dict(differentiable=True), "reference")])
def test_torch_flags_map_onto_kernels(flags, impl):
    assert [r["impl"] for r in ak.AdamW([_param(torch.float32, "dense")], **flags).explain()] == [impl]


def test_explicit_impl_that_cannot_take_a_tensor_is_an_error_before_any_change():
    p = _param(torch.float64, "dense")
    with pytest.raises(ValueError, match="impl='cpu' cannot update param 0"):
        ak.AdamW([p], impl="cpu")  # refused when built, not at the first step
    opt = ak.AdamW([_param(torch.float32, "dense")], impl="cpu")
    with pytest.raises(ValueError, match="impl='cpu' cannot update param 0"):
        opt.add_param_group({"params": [p]})
    assert not opt.state and not p.detach().any() and len(opt.param_groups) == 1


def test_no_compiler_falls_back_to_fused_with_a_warning(monkeypatch):
    from adamkit.torch.kernels import cpu

    cpu.load.cache_clear()
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-cache")  # and no cached library either
    try:
        with pytest.warns(RuntimeWarning, match="could not be built"):
            assert cpu.load() is None
        assert [r["impl"] for r in ak.AdamW([_param(torch.float32, "dense")], decay="l1").explain()] == ["fused"]
    finally:
        cpu.load.cache_clear()


def test_build_cache_is_keyed_by_the_cpu(monkeypatch, tmp_path):
    from adamkit.torch.kernels import cpu

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cpu.load.cache_clear()
    try:
        assert cpu.load() is not None
        monkeypatch.setattr(cpu, "_cpu_features", lambda: "another CPU")
        cpu.load.cache_clear()
        assert cpu.load() is not None
        assert len(list((tmp_path / "adamkit").glob("cpu_adam-*.so"))) == 2
    finally:
        cpu.load.cache_clear()


def test_plan_is_cached_until_something_it_reads_changes():
    p = torch.zeros(6, 4, requires_grad=True)
    p.grad = torch.ones(6, 4)
    opt = ak.AdamW([p])
    group = opt.param_groups[0]

    def plan():
        return opt._plan(group, [p], [p.grad])

    first = plan()
    opt.step()
    p.grad = torch.ones(6, 4)  # a new grad tensor of the same layout, as autograd makes each step
    assert plan() is first
    p.grad = torch.ones(4, 6).t()  # strided unlike the param: flat kernels cannot index it
    assert plan()[0].kernel == "reference"
    p.grad = torch.ones(6, 4)
    group["impl"] = "foreach"
    assert plan()[0].kernel == "foreach"
    group["impl"] = "auto"
    with torch.no_grad():
        p.data = p.data.double()  # another dtype behind the same param object
    p.grad = torch.ones(6, 4, dtype=torch.float64)
    assert plan()[0].kernel == "fused"  # the C kernel takes float32 and bfloat16 only


def test_loaded_states_are_planned_in_their_own_layout():
    p = torch.zeros(6, 4, requires_grad=True)
    p.grad = torch.ones(6, 4)
    opt = ak.AdamW([p])
    opt.step()
    state = opt.state_dict()
    state["state"][0]["exp_avg"] = torch.zeros(4, 6).t()  # a checkpoint with a transposed state
    opt.load_state_dict(state)
    assert opt._plan(opt.param_groups[0], [p], [p.grad])[0].kernel == "reference"
