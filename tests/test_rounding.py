"""Writing updates back to bf16/fp16 params: nearest, Kahan and stochastic rounding."""

import io
import warnings

import pytest
import torch

import adamkit.torch as ak
from adamkit.torch.kernels import rounding as rnd

HALF = [torch.bfloat16, torch.float16]
MODES = ["nearest", "kahan", "stochastic"]


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_stochastic_rounding_is_unbiased(dtype):
    x = torch.randn(200, generator=torch.Generator().manual_seed(0)) * 3
    draws = 4000
    rounded = rnd.stochastic(x.repeat(draws), dtype, rnd.tensor_key(0, 1, 2)).float().view(draws, -1)
    lo = torch.minimum(rounded.min(0).values, x)
    hi = torch.maximum(rounded.max(0).values, x)
    assert ((rounded == lo) | (rounded == hi)).all()  # only the two neighbours of x
    p = ((x - lo) / (hi - lo)).nan_to_num(0)
    sigma = (hi - lo) * (p * (1 - p) / draws).sqrt()
    assert ((rounded.mean(0) - x).abs() <= 5 * sigma + 1e-12).all()


def test_the_stream_is_the_documented_hash():
    """Tensor arithmetic (int64 holding uint32) against the hash written out on Python integers."""
    def mix32(x):
        x ^= x >> 16
        x = x * 0x7FEB352D % 2**32
        x ^= x >> 15
        x = x * 0x846CA68B % 2**32
        return x ^ (x >> 16)

    seed, key, step = 2**64 - 3, 5, 123
    k = mix32(seed % 2**32)
    for word in (seed >> 32, key, step):
        k = mix32(k ^ word)
    assert rnd.tensor_key(seed, key, step) == k
    draws = rnd.bits(k, 5000, "cpu")
    assert draws.tolist() == [mix32((i * 0x9E3779B9 + k) % 2**32) for i in range(5000)]
    x = torch.randn(5000)
    raw = x.view(torch.int32).tolist()
    want = [((r % 2**32 + (d >> 16)) >> 16) for r, d in zip(raw, draws.tolist())]
    got = rnd.stochastic(x, torch.bfloat16, k).view(torch.int16).tolist()
    assert [g % 2**16 for g in got] == want


def _run(mode, dtype=torch.bfloat16, impl="reference", seed=1, steps=20, lr=1e-3, cls=ak.AdamW, **kwargs):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(500, generator=gen).to(dtype).requires_grad_()
    opt = cls([p], lr=lr, rounding=mode, rounding_seed=seed, impl=impl, **kwargs)
    for _ in range(steps):
        p.grad = torch.randn(500, generator=gen).to(dtype)
        opt.step()
    return p.detach(), opt


def test_stochastic_rounding_is_reproducible_per_seed():
    a, _ = _run("stochastic", seed=7)
    b, _ = _run("stochastic", seed=7)
    c, _ = _run("stochastic", seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_kahan_keeps_tiny_updates_that_nearest_loses(dtype):
    """1000 SGD steps of 1e-4 on a weight of 1: below half an ulp each (bf16: 2**-9), so nearest
    never moves; Kahan's p + compensation tracks the fp32 run. The compensation is itself kept in
    the param's dtype (2 bytes a param), whose own rounding leaves an error of well under 1% of
    the total change: 6e-4 of 0.1 in bf16, far less in fp16."""
    results = {}
    for mode in ("nearest", "kahan", "stochastic"):
        p = torch.ones(64, dtype=dtype, requires_grad=True)
        opt = ak.SGD([p], lr=1e-4, rounding=mode, rounding_seed=0)
        for _ in range(1000):
            p.grad = torch.ones(64, dtype=dtype)
            opt.step()
        comp = opt.state[p].get("kahan_comp")
        results[mode] = p.detach().float() + (comp.float() if comp is not None else 0)
    exact = torch.tensor(1.0) - 1000 * torch.tensor(1e-4)
    assert (results["nearest"] == 1).all()
    atol = 1e-3 if dtype == torch.bfloat16 else 1e-4
    torch.testing.assert_close(results["kahan"], exact.expand(64), rtol=0, atol=atol)
    # unbiased: each weight is a sum of 1000 coin flips of one ulp (std about 0.02); their mean's
    # std is 0.0025, and 0.01 is four of it
    assert (results["stochastic"].mean() - exact).abs() < 0.01


OPTIMIZERS = {
    "adamw": (ak.AdamW, dict(weight_decay=0.1)),
    "adam-l1-amsgrad-max": (ak.Adam, dict(decay="l1", weight_decay=0.01, amsgrad=True, maximize=True)),
    "sgd-nesterov": (ak.SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
}


@pytest.mark.parametrize("impl,optimizer,mode",  # foreach's nearest computes in the param dtype, as torch's
                         [("foreach", name, mode) for name in OPTIMIZERS for mode in MODES[1:]]
                         + [("triton", name, mode) for name in ("adamw", "adam-l1-amsgrad-max") for mode in MODES])
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_kernels_agree_with_the_reference(impl, optimizer, mode, dtype):
    """Fresh random inputs, 8 steps, re-synced after each. Each kernel computes in fp32 and
    stochastic rounding shares one random stream, so they agree bit for bit but where a last-bit
    fp32 difference (another operation order) moves a value across a rounding threshold."""
    if impl == "triton":
        pytest.importorskip("triton")
    cls, kwargs = OPTIMIZERS[optimizer]
    gen = torch.Generator().manual_seed(4)
    base = [torch.randn(n, generator=gen).to(dtype) for n in (3000, 37, 1)]
    ours = [b.clone().requires_grad_() for b in base]
    ref = [b.clone().requires_grad_() for b in base]
    opt = cls(ours, lr=1e-3, rounding=mode, impl=impl, rounding_seed=2, **kwargs)
    opt_r = cls(ref, lr=1e-3, rounding=mode, impl="reference", rounding_seed=2, **kwargs)
    assert {row["impl"] for row in opt.explain()} == {impl if cls is not ak.SGD or impl == "foreach" else "reference"}
    ulp = torch.finfo(dtype).eps
    same = total = 0
    for _ in range(8):
        for a, b in zip(ours, ref):
            a.grad = b.grad = torch.randn(a.shape, generator=gen).to(dtype)
        opt.step()
        opt_r.step()
        for a, b in zip(ours, ref):
            assert ((a - b).abs() <= b.abs().float().clamp_min(1e-3) * ulp * 1.01).all()
            same, total = same + (a == b).sum().item(), total + a.numel()
            with torch.no_grad():  # re-sync
                a.copy_(b)
            for key, value in opt_r.state[b].items():
                opt.state[a][key].copy_(value)
    assert same / total > 0.999


DTYPES = [(torch.bfloat16, None), (torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)]


@pytest.mark.parametrize("impl,param_dtype,state_dtype",  # foreach keeps states in the param dtype
                         [(impl, *d) for impl in ("reference", "foreach", "triton") for d in DTYPES
                          if impl != "foreach" or d[1] is None])
@pytest.mark.parametrize("mode", MODES)
def test_save_reload_continue_equals_not_stopping(impl, mode, param_dtype, state_dtype):
    if impl == "triton":
        pytest.importorskip("triton")
    whole, _ = _run(mode, param_dtype, impl, seed=5, steps=12, state_dtype=state_dtype)
    p, opt = _run(mode, param_dtype, impl, seed=5, steps=6, state_dtype=state_dtype)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    q = p.clone().requires_grad_()
    opt2 = ak.AdamW([q], lr=1e-3, impl=impl, state_dtype=state_dtype)  # rounding comes from the checkpoint
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    assert opt2.param_groups[0]["rounding"] == mode
    if mode == "kahan" and param_dtype == torch.bfloat16:
        assert opt2.state[q]["kahan_comp"].dtype == torch.bfloat16
    gen = torch.Generator().manual_seed(3)  # replay the same gradients from step 7 on
    torch.randn(500, generator=gen)
    for _ in range(6):
        torch.randn(500, generator=gen)
    for _ in range(6):
        q.grad = torch.randn(500, generator=gen).to(param_dtype)
        opt2.step()
    assert torch.equal(q.detach(), whole)


def test_checkpoint_loads_into_torch_optim_which_rounds_to_nearest():
    """torch.optim keeps the kahan_comp state it does not know, and continues with plain rounding."""
    p, opt = _run("kahan", steps=3)
    peer = torch.optim.AdamW([p.clone().requires_grad_()], lr=1e-3)
    peer.load_state_dict(opt.state_dict())
    q = peer.param_groups[0]["params"][0]
    q.grad = torch.ones_like(q)
    peer.step()
    assert "kahan_comp" in peer.state[q]


def test_plan_routes_special_rounding_to_kernels_that_offer_it():
    p = torch.zeros(4, dtype=torch.bfloat16, requires_grad=True)
    rows = ak.AdamW([p], rounding="kahan").explain()
    assert rows[0]["impl"] == "cpu" and "rounding='kahan'" in rows[0]["reason"]
    assert rows[0]["rounding"] == "kahan"
    fp16 = torch.zeros(4, dtype=torch.float16, requires_grad=True)  # the C kernel takes fp32 and bf16
    assert ak.AdamW([fp16], rounding="kahan").explain()[0]["impl"] == "reference"
    assert ak.AdamW([p], rounding="kahan", impl="fused").explain()[0]["impl"] == "cpu"
    f32 = torch.zeros(4, requires_grad=True)  # rounding leaves fp32 params to the default kernel
    f32_row = ak.AdamW([f32], rounding="kahan").explain()[0]
    assert f32_row["impl"] == ak.AdamW([f32]).explain()[0]["impl"] and f32_row["rounding"] == "nearest"
    with pytest.raises(ValueError, match="rounding='stochastic'"):
        ak.AdamW([fp16], rounding="stochastic", impl="fused").explain()
    with pytest.raises(ValueError, match="rounding"):
        ak.AdamW([p], rounding="up")


def _warnings(**kwargs):
    p = kwargs.pop("param")
    p.grad = torch.zeros_like(p)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        opt = ak.AdamW([p], **kwargs)
        opt.step()
        opt.step()
    return [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]


def test_precision_warnings_fire_once_on_their_case_only():
    assert _warnings(param=torch.ones(8, requires_grad=True)) == []  # fp32 defaults
    assert _warnings(param=torch.ones(8, requires_grad=True), state_dtype=torch.float64) == []
    bf16 = _warnings(param=torch.ones(8, dtype=torch.bfloat16, requires_grad=True), lr=1e-4)
    assert len(bf16) == 2
    assert "beta2=0.999 rounds to 1.0 in torch.bfloat16" in bf16[0]
    assert "lr=0.0001" in bf16[1] and "rounding=" in bf16[1]
    fp32_moments = _warnings(param=torch.ones(8, dtype=torch.bfloat16, requires_grad=True), lr=1e-4,
                             state_dtype=torch.float32, rounding="kahan")
    assert fp32_moments == []
    eps = _warnings(param=torch.ones(8, dtype=torch.float16, requires_grad=True), impl="foreach",
                    state_dtype=None, eps=1e-8, betas=(0.9, 0.99))
    assert any("eps=1e-08 rounds to 0 in torch.float16" in m for m in eps)
