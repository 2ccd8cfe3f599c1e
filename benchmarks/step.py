"""Optimizer-step throughput: adamkit's kernels against their peers, in one process.

    python benchmarks/step.py                       # GPT-2-small shapes, fp32, every decay mode
    python benchmarks/step.py --model gpt2-medium --dtype bf16 --rounds 1

For each implementation it prints the median time per step (CUDA events on GPU,
perf_counter on CPU), the effective bandwidth, the ratio to torch's fused AdamW and
to the memory floor: the bytes one step must move, at the speed of one large copy
measured in the same run. Peers: torch.optim.AdamW for-loop / foreach / fused, and
optimi, bitsandbytes and torchao when installed.
"""

import argparse
import gc
import importlib.util
import statistics
import time

import torch

import adamkit.torch as ak


def gpt2_shapes(d, layers, vocab=50257, context=1024):
    """Parameter shapes of GPT-2 (tied embeddings): 148 tensors for small, 292 for medium."""
    block = [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return [(vocab, d), (context, d)] + block * layers + [(d,), (d,)]


MODELS = {"gpt2-small": gpt2_shapes(768, 12), "gpt2-medium": gpt2_shapes(1024, 24)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, steps, warmup=1):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(steps):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return statistics.median(times)


def copy_bandwidth(device, timer, nbytes=1 << 30):
    """Bytes per second of one large copy (read + write counted)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = timer(lambda: dst.copy_(src), steps=10)
    return 2 * nbytes / seconds


def make_params(shapes, dtype, device):
    params = [torch.zeros(s, dtype=dtype, device=device).normal_(0, 0.02).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


def candidates(device, decay):
    """(name, factory) pairs; factories build an optimizer over a param list."""
    wd = 0.1
    out = []
    if decay == "decoupled":  # the peers implement PyTorch-style decoupled decay; they run first
        out += [("torch for-loop", lambda ps: torch.optim.AdamW(ps, weight_decay=wd, foreach=False)),
                ("torch foreach", lambda ps: torch.optim.AdamW(ps, weight_decay=wd, foreach=True)),
                ("torch fused", lambda ps: torch.optim.AdamW(ps, weight_decay=wd, fused=True))]
        if importlib.util.find_spec("optimi"):
            import optimi
            out.append(("optimi triton", lambda ps: optimi.AdamW(ps, weight_decay=wd, triton=True)))
        if importlib.util.find_spec("bitsandbytes") and device.type == "cuda":
            import bitsandbytes as bnb
            out.append(("bitsandbytes 32-bit", lambda ps: bnb.optim.AdamW32bit(ps, weight_decay=wd)))
        if importlib.util.find_spec("torchao"):
            from torchao.optim import _AdamW
            out.append(("torchao", lambda ps: _AdamW(ps, weight_decay=wd)))
    ours = ["reference", "foreach", "fused"] + (["triton"] if device.type == "cuda" else [])
    return out + [(f"adamkit {impl}", lambda ps, impl=impl: ak.AdamW(ps, lr=1e-3, weight_decay=wd, decay=decay,
                                                                     impl=impl)) for impl in ours]


def state_bytes(opt):
    total = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if isinstance(t, torch.Tensor) and t.dim() > 0)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gpt2-small", choices=MODELS)
    parser.add_argument("--dtype", default="fp32", choices=DTYPES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per implementation and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over all implementations, interleaved so that drifting machine load "
                             "hits every one alike; 1 frees each optimizer's state before the next")
    parser.add_argument("--decays", default="decoupled,independent,l2,l1")
    parser.add_argument("--skip", default="adamkit reference,torch for-loop",
                        help="comma-separated names to skip (the slow loops by default)")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    timer = Timer(device)
    shapes = MODELS[args.model]
    n = sum(torch.Size(s).numel() for s in shapes)
    per_param = 7 * torch.finfo(dtype).bits // 8  # read p, g, m, v; write p, m, v
    floor_s = n * per_param / copy_bandwidth(device, timer)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model}: {n / 1e6:.1f}M params in {len(shapes)} tensors, {args.dtype}, {name}; torch "
          f"{torch.__version__}")
    print(f"floor (one large copy moving {per_param} B/param): {floor_s * 1e3:.2f} ms; "
          f"median of {args.rounds} x {args.steps} steps each\n")
    skip = set(filter(None, args.skip.split(",")))
    entries = [(decay, label, factory) for decay in args.decays.split(",")
               for label, factory in candidates(device, decay) if label not in skip]
    params = make_params(shapes, dtype, device)  # shared: only the optimizer states differ
    optimizers, times, state = {}, {}, {}
    for _ in range(args.rounds):
        for decay, label, factory in entries:
            key = (decay, label)
            opt = optimizers.get(key) or factory(params)
            times.setdefault(key, []).append(timer(opt.step, args.steps))
            state[key] = state_bytes(opt) / n
            if args.rounds > 1:
                optimizers[key] = opt
            del opt
            gc.collect()
    fused = statistics.median(times[("decoupled", "torch fused")]) if ("decoupled", "torch fused") in times else None
    print(f"{'decay':12} {'implementation':22} {'ms/step':>9} {'GB/s':>7} {'/torch fused':>12} "
          f"{'/floor':>7} {'state B/param':>13}")
    for (decay, label), samples in times.items():
        seconds = statistics.median(samples)
        ratio = f"{seconds / fused:.2f}" if fused else "-"
        print(f"{decay:12} {label:22} {seconds * 1e3:9.2f} {n * per_param / seconds / 1e9:7.1f} "
              f"{ratio:>12} {seconds / floor_s:7.2f} {state[(decay, label)]:13.1f}")


if __name__ == "__main__":
    main()
