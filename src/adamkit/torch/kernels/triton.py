"""One Triton launch updates every tensor of a (device, dtype) bucket.

A device-side table holds, per tensor, the addresses of param, grad, exp_avg,
exp_avg_sq, max_exp_avg_sq and step, and a cumulative count of blocks; each program
finds its tensor by binary search over that count, so any mix of sizes (empty,
scalar, huge) shares one launch. Math is fp32 whatever the storage dtype; lr,
shrink and step may live on the device, so a step never syncs with the host and can
be captured in a CUDA graph.

On the CPU it runs under ``TRITON_INTERPRET=1`` (Triton's interpreter), which is how
CI tests it. Tensors must be non-overlapping and dense with matching strides
(channels-last is fine): the plan sends any other tensor to the reference kernel. Each
``step`` is a float32 tensor on the param's device (the plan places it there).
"""

import math
import os

import torch
import triton
import triton.language as tl

BLOCK = 2048
_TL = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16,
       torch.float64: tl.float64}
_ROWS = 8  # p, g, m, v, vmax, step, kahan_comp, rounding key
_ROUNDING = {"nearest": 0, "kahan": 1, "stochastic": 2}
# Triton's interpreter truncates fp32 -> bf16 (its casts ignore the rounding mode) where compiled
# code rounds to nearest even; under the interpreter the kernel rounds by hand, so that CI tests
# the numbers a GPU computes.
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _narrow(x, DTYPE: tl.constexpr, BY_HAND: tl.constexpr):
    """``x`` (fp32) rounded to nearest even in ``DTYPE``."""
    if BY_HAND and DTYPE == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        nan = (bits & 0x7FFFFFFF) > 0x7F800000
        rounded = tl.where(nan, (bits >> 16) | 0x40, rounded)  # a NaN stays a NaN
        return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(DTYPE)


@triton.jit
def _mix32(x):
    """rounding.mix32 on uint32 values."""
    x ^= x >> 16
    x *= 0x7FEB352D
    x ^= x >> 15
    x *= 0x846CA68B
    return x ^ (x >> 16)


@triton.jit(do_not_specialize=["seed_lo", "seed_hi"])
def _adam_kernel(table, cum, n_tensors, lr_ptr, lr_val, shrink_ptr, shrink_val,
                 beta1, beta2, log2_beta1, log2_beta2, eps, l2, l1, seed_lo, seed_hi,
                 P_DTYPE: tl.constexpr, ROUNDING: tl.constexpr, BY_HAND: tl.constexpr, S_DTYPE: tl.constexpr,
                 LOG_T: tl.constexpr,
                 LR_ON_DEVICE: tl.constexpr, SHRINK_ON_DEVICE: tl.constexpr, HAS_SHRINK: tl.constexpr,
                 AMSGRAD: tl.constexpr, MAXIMIZE: tl.constexpr, HAS_L2: tl.constexpr, HAS_L1: tl.constexpr,
                 BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    # Largest t with cum[t] <= pid: the tensor this block belongs to.
    lo = pid * 0
    hi = lo + n_tensors
    for _ in tl.static_range(LOG_T):
        mid = (lo + hi) // 2
        take = tl.load(cum + mid) <= pid
        lo = tl.where(take, mid, lo)
        hi = tl.where(take, hi, mid)
    row = table + lo * 8
    n = tl.load(cum + n_tensors + 1 + lo)  # sizes follow the cumulative counts
    offs = (pid - tl.load(cum + lo)) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    p_ptr = tl.load(row + 0).to(tl.pointer_type(P_DTYPE))
    g_ptr = tl.load(row + 1).to(tl.pointer_type(P_DTYPE))
    m_ptr = tl.load(row + 2).to(tl.pointer_type(S_DTYPE))
    v_ptr = tl.load(row + 3).to(tl.pointer_type(S_DTYPE))
    step = tl.load(tl.load(row + 5).to(tl.pointer_type(tl.float32)))

    lr = tl.load(lr_ptr).to(tl.float32) if LR_ON_DEVICE else lr_val
    p = tl.load(p_ptr + offs, mask=mask).to(tl.float32)
    if ROUNDING == 1:  # Kahan: start from p plus what rounding dropped last time
        c_ptr = tl.load(row + 6).to(tl.pointer_type(P_DTYPE))
        p += tl.load(c_ptr + offs, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
    m = tl.load(m_ptr + offs, mask=mask).to(tl.float32)
    v = tl.load(v_ptr + offs, mask=mask).to(tl.float32)
    if MAXIMIZE:
        g = -g
    if HAS_L2:
        g += l2 * p
    if HAS_L1:
        g += l1 * tl.where(p > 0, 1.0, tl.where(p < 0, -1.0, 0.0))
    if HAS_SHRINK:
        p *= tl.load(shrink_ptr).to(tl.float32) if SHRINK_ON_DEVICE else shrink_val
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    bias1 = 1 - tl.exp2(step * log2_beta1)
    bias2 = 1 - tl.exp2(step * log2_beta2)
    if AMSGRAD:
        vmax_ptr = tl.load(row + 4).to(tl.pointer_type(S_DTYPE))
        vmax = tl.maximum(tl.load(vmax_ptr + offs, mask=mask).to(tl.float32), v)
        tl.store(vmax_ptr + offs, _narrow(vmax, S_DTYPE, BY_HAND), mask=mask)
        denom = tl.sqrt(vmax) / tl.sqrt(bias2) + eps
    else:
        denom = tl.sqrt(v) / tl.sqrt(bias2) + eps
    p -= (lr / bias1) * m / denom
    rounded = _narrow(p, P_DTYPE, BY_HAND)
    if ROUNDING == 1:
        tl.store(c_ptr + offs, _narrow(p - rounded.to(tl.float32), P_DTYPE, BY_HAND), mask=mask)
    if ROUNDING == 2:  # stochastic, from the stream every kernel shares (see rounding.py)
        k = _mix32(seed_lo.to(tl.uint32))
        k = _mix32(k ^ seed_hi.to(tl.uint32))
        k = _mix32(k ^ tl.load(row + 7).to(tl.uint32))
        k = _mix32(k ^ step.to(tl.uint32))
        draw = _mix32(offs.to(tl.uint32) * 0x9E3779B9 + k)
        if P_DTYPE == tl.bfloat16:  # truncation plus a carry as likely as the dropped fraction
            raw = p.to(tl.uint32, bitcast=True)
            top = ((raw + (draw >> 16)) >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
            rounded = tl.where(p != p, rounded, top)  # a NaN stays a NaN
        else:  # the nearest value or its neighbour on the far side of p, unbiased
            near = rounded.to(tl.float32)
            away = tl.abs(p) > tl.abs(near)
            bits = rounded.to(tl.int16, bitcast=True) + tl.where(away, 1, -1).to(tl.int16)
            neighbour = bits.to(P_DTYPE, bitcast=True)
            prob = tl.where(p != near, (p - near) / (neighbour.to(tl.float32) - near), 0.0)
            u = (draw >> 8).to(tl.float32) * 5.9604644775390625e-08  # 2**-24
            rounded = tl.where(u < prob, neighbour, rounded)
    tl.store(p_ptr + offs, rounded, mask=mask)
    tl.store(m_ptr + offs, _narrow(m, S_DTYPE, BY_HAND), mask=mask)
    tl.store(v_ptr + offs, _narrow(v, S_DTYPE, BY_HAND), mask=mask)


def _log2(beta):
    return math.log2(beta) if beta > 0 else -1e30  # beta**step = 0 for beta = 0


_tables = {}


def _table(device, tensors_by_row):
    """(table, cum_and_sizes) on ``device`` for these tensors, cached by their addresses."""
    def entry(t):  # an address, 0 for an absent tensor, or a plain integer (the rounding key)
        return t if isinstance(t, int) else (t.data_ptr() if t is not None else 0)

    key = (device, tuple(entry(t) for row in tensors_by_row for t in row), tuple(t.numel() for t in tensors_by_row[0]))
    cached = _tables.get(key)
    if cached is None:
        rows = [[entry(t) for t in ts] for ts in zip(*tensors_by_row)]
        sizes = [p.numel() for p in tensors_by_row[0]]
        cum = [0]
        for n in sizes:
            cum.append(cum[-1] + -(-n // BLOCK))
        table = torch.tensor(rows, dtype=torch.int64).to(device)
        counts = torch.tensor(cum + sizes, dtype=torch.int64).to(device)
        if len(_tables) > 64:  # addresses change when grads are re-allocated: keep the cache small
            _tables.clear()
        cached = _tables[key] = (table, counts, cum[-1])
    return cached


def _scalar_arg(x, device):
    """(pointer, value, on_device) for a float or a one-element tensor."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32, non_blocking=True), 0.0, True
    return None, float(x), False


@torch._disable_dynamo  # address tables and launches: torch.compile runs it outside the graph
def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, rounding=None):
    lr, beta1, beta2, eps, l2, l1, shrink, amsgrad, maximize = h
    vmaxes = max_exp_avg_sqs if amsgrad else [None] * len(params)
    comps = rounding.comps if rounding else [None] * len(params)
    keys = rounding.keys if rounding else [0] * len(params)
    seed = rounding.seed if rounding else 0
    buckets = {}
    for i, p in enumerate(params):
        buckets.setdefault((p.device, p.dtype, exp_avgs[i].dtype), []).append(i)
    for (device, p_dtype, s_dtype), idx in buckets.items():
        rows = [[ts[i] for i in idx] for ts in (params, grads, exp_avgs, exp_avg_sqs, vmaxes, steps, comps, keys)]
        mode = rounding.mode if rounding and p_dtype in (torch.bfloat16, torch.float16) else "nearest"
        table, counts, blocks = _table(device, rows)
        if blocks == 0:
            continue
        lr_ptr, lr_val, lr_dev = _scalar_arg(lr, device)
        shrink_ptr, shrink_val, shrink_dev = _scalar_arg(shrink, device)
        # Unused pointer arguments get a valid device address (the table): Triton needs one.
        _adam_kernel[(blocks,)](
            table, counts, len(idx), lr_ptr if lr_dev else table, lr_val,
            shrink_ptr if shrink_dev else table, shrink_val, float(beta1), float(beta2), _log2(beta1),
            _log2(beta2), float(eps), float(l2), float(l1), seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF,
            P_DTYPE=_TL[p_dtype], ROUNDING=_ROUNDING[mode], BY_HAND=_INTERPRETED, S_DTYPE=_TL[s_dtype],
            LOG_T=max(1, math.ceil(math.log2(len(idx) + 1))), LR_ON_DEVICE=lr_dev,
            SHRINK_ON_DEVICE=shrink_dev, HAS_SHRINK=shrink_dev or shrink_val != 1.0, AMSGRAD=amsgrad,
            MAXIMIZE=maximize, HAS_L2=l2 != 0, HAS_L1=l1 != 0, BLOCK=BLOCK, num_warps=8)
