"""Optimizer-step throughput: adamkit's kernels against their peers, in one process.

    python benchmarks/step.py                       # GPT-2-small shapes, fp32, every decay mode
    python benchmarks/step.py --dtype bf16 --decays decoupled,l1 --rounds 7
    python benchmarks/step.py --dtype bf16 --decays decoupled --variants   # + rounding modes, state dtypes

Every round times each contender beside torch's fused AdamW (the reference) and a floor
pass, in an order that rotates from round to round, so that load drifting on a shared
machine falls on all three alike; the ratios are medians over rounds of the times taken
side by side. The floor is the bytes one AdamW step must move (p, g, m, v read; p, m, v
written) moved by in-place passes over flat buffers of the same size: a copy reads and
writes one array and under-reads the bandwidth of a step that streams seven.

Times are medians of ``--steps`` steps (CUDA events on GPU, perf_counter on CPU). Beside
each time the run reports the machine's load average and, on the CPU, the share of its
threads' time the process got (CPU seconds / wall seconds / threads): below 1 means other
jobs took cores from it. Contenders: torch.optim.AdamW foreach / fused, adamkit's
implementations (``cpu``: its C kernel), the NumPy backend, and DeepSpeed's CPUAdam,
optimi, bitsandbytes and torchao when installed; rows that cannot run on the device or
dtype are left out. ``--variants`` adds, for the C kernel, each ``rounding=`` mode of bf16
params and each state dtype (bf16 params with fp32 moments, fp32 params with bf16 moments).

``GB/s`` is each row's own traffic: params and grads read, params written, and every state
tensor (Kahan's ``kahan_comp`` included) read and written; ``state B/param`` the optimizer
state it keeps. ``/floor`` compares with the plain AdamW floor, whatever the row moves.
"""

import argparse
import gc
import importlib.util
import os
import platform
import statistics
import time

import torch

import adamkit.numpy as akn
import adamkit.torch as ak


def gpt2_shapes(d, layers, vocab=50257, context=1024):
    """Parameter shapes of GPT-2 (tied embeddings): 148 tensors for small, 292 for medium."""
    block = [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return [(vocab, d), (context, d)] + block * layers + [(d,), (d,)]


MODELS = {"gpt2-small": gpt2_shapes(768, 12), "gpt2-medium": gpt2_shapes(1024, 24),
          "1m-100": [(100, 100)] * 100}  # small tensors: the per-tensor cost decides
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
REFERENCE = "torch fused"


class Timer:
    """Median seconds per call, and the share of its threads' time the process got meanwhile."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, steps):
        times, cpu0, wall0 = [], time.process_time(), time.perf_counter()
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
        share = (time.process_time() - cpu0) / (time.perf_counter() - wall0) / torch.get_num_threads()
        return statistics.median(times), share


def floor_pass(n, dtype, device):
    """One step's traffic over flat buffers of ``n`` elements, in place: p += 0*g (p, g read,
    p written), m *= 1, v *= 1 (read and written). No per-tensor cost, no arithmetic to wait on."""
    p, g, m, v = (torch.zeros(n, dtype=dtype, device=device) for _ in range(4))

    def run():
        p.add_(g, alpha=0.0)
        m.mul_(1.0)
        v.mul_(1.0)
    return run


def make_params(shapes, dtype, device):
    params = [torch.zeros(s, dtype=dtype, device=device).normal_(0, 0.02).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


class NumpyStep:
    """adamkit.numpy.AdamW over NumPy views of the same tensors, stepped like a torch optimizer."""

    def __init__(self, params, **kwargs):
        self.params = [p.detach().numpy() for p in params]
        self.grads = [p.grad.numpy() for p in params]
        self.opt = akn.AdamW(self.params, **kwargs)
        self.state = {}

    def step(self):
        self.opt.step(self.grads)


def contenders(device, dtype, decay, variants=False):
    """(name, factory) pairs for one decay mode; factories build an optimizer over a param list."""
    wd, cpu = 0.1, device.type == "cpu"
    out = []
    if decay == "decoupled":  # the peers implement PyTorch-style decoupled decay
        out += [("torch for-loop", lambda ps: torch.optim.AdamW(ps, weight_decay=wd, foreach=False)),
                ("torch foreach", lambda ps: torch.optim.AdamW(ps, weight_decay=wd, foreach=True)),
                (REFERENCE, lambda ps: torch.optim.AdamW(ps, weight_decay=wd, fused=True))]
        if importlib.util.find_spec("deepspeed") and cpu:
            def deepspeed(ps):
                from deepspeed.ops.adam import DeepSpeedCPUAdam
                return DeepSpeedCPUAdam(ps, lr=1e-3, weight_decay=wd, adamw_mode=True)
            out.append(("DeepSpeed CPUAdam", deepspeed))
        if importlib.util.find_spec("optimi"):
            import optimi
            out.append(("optimi triton", lambda ps: optimi.AdamW(ps, weight_decay=wd, triton=True)))
        if importlib.util.find_spec("bitsandbytes") and device.type == "cuda":
            import bitsandbytes as bnb
            out.append(("bitsandbytes 32-bit", lambda ps: bnb.optim.AdamW32bit(ps, weight_decay=wd)))
        if importlib.util.find_spec("torchao"):
            from torchao.optim import _AdamW
            out.append(("torchao", lambda ps: _AdamW(ps, weight_decay=wd)))
    ours = ["reference", "foreach", "fused"] + (["cpu"] if cpu else ["triton"] if device.type == "cuda" else [])
    out += [(f"adamkit {impl}", lambda ps, impl=impl: ak.AdamW(ps, lr=1e-3, weight_decay=wd, decay=decay,
                                                              impl=impl)) for impl in ours]
    if cpu and dtype in (torch.float32, torch.float64):
        out.append(("adamkit.numpy", lambda ps: NumpyStep(ps, lr=1e-3, weight_decay=wd, decay=decay)))
    if variants and cpu:
        out += [(f"adamkit cpu {label}", lambda ps, kw=kw: ak.AdamW(ps, lr=1e-3, weight_decay=wd, decay=decay,
                                                                   impl="cpu", **kw))
                for label, kw in cpu_variants(dtype)]
    return out


def cpu_variants(dtype):
    """(label, options) of the C kernel's rounding modes and state dtypes for params of ``dtype``."""
    if dtype == torch.float32:
        return [("bf16-state", dict(state_dtype=torch.bfloat16))]
    if dtype != torch.bfloat16:
        return []
    out = [(mode, dict(rounding=mode)) for mode in ("kahan", "stochastic")]
    return out + [(f"fp32-state {mode}".replace(" nearest", ""), dict(rounding=mode, state_dtype=torch.float32))
                  for mode in ("nearest", "kahan", "stochastic")]


def traffic(params, opt):
    """Bytes one step moves: params and grads read, params written, each state tensor read and written."""
    return sum(3 * p.numel() * p.element_size() for p in params) + 2 * state_bytes(opt)


def state_bytes(opt):
    if isinstance(opt, NumpyStep):
        return sum(a.nbytes for s in opt.opt.state.values() for a in s.values() if hasattr(a, "nbytes"))
    return sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
               if isinstance(t, torch.Tensor) and t.dim() > 0)


def machine(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, torch on {torch.get_num_threads()} threads"


def load():
    return "load average {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gpt2-small", choices=MODELS)
    parser.add_argument("--dtype", default="fp32", choices=DTYPES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per contender and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; each times every contender beside "
                                                             "the reference and the floor")
    parser.add_argument("--decays", default="decoupled,independent,l2,l1")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch, adamkit's C kernel and DeepSpeed (default: torch's own choice)")
    parser.add_argument("--variants", action="store_true",
                        help="also time the C kernel's rounding modes and state dtypes (CPU)")
    parser.add_argument("--skip", default="adamkit reference,torch for-loop",
                        help="comma-separated names to skip (the slow loops by default)")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by DeepSpeed's OpenMP kernel when it loads
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    timer = Timer(device)
    shapes = MODELS[args.model]
    n = sum(torch.Size(s).numel() for s in shapes)
    print(f"{args.model}: {n / 1e6:.1f}M params in {len(shapes)} tensors, {args.dtype}; {machine(device)}; "
          f"torch {torch.__version__}")
    print(f"at start: {load()}")
    skip = set(filter(None, args.skip.split(",")))
    entries = [(decay, label, factory) for decay in args.decays.split(",")
               for label, factory in contenders(device, dtype, decay, args.variants) if label not in skip]
    params = make_params(shapes, dtype, device)  # shared: only the optimizer states differ
    reference = torch.optim.AdamW(params, weight_decay=0.1, fused=True)
    reference.step()  # its state, kept for the whole run
    floor = floor_pass(n, dtype, device)
    samples = {("", "floor"): []}  # (decay, label) -> list of (seconds, share, seconds / reference, seconds / floor)
    state, moved = {}, {("", "floor"): 7 * n * torch.finfo(dtype).bits // 8}  # read p, g, m, v; write p, m, v
    for r in range(args.rounds):
        for decay, label, factory in entries:
            opt = factory(params)
            for _ in range(args.steps):  # builds its state, compiles, warms up its memory: untimed
                opt.step()
            timed = {}
            order = [("contender", opt.step), ("reference", reference.step), ("floor", floor)]
            shift = r % 3
            for role, fn in order[shift:] + order[:shift]:
                timed[role] = timer(fn, args.steps)
            seconds, share = timed["contender"]
            samples.setdefault((decay, label), []).append(
                (seconds, share, seconds / timed["reference"][0], seconds / timed["floor"][0]))
            samples.setdefault(("", "floor"), []).append(timed["floor"] + (timed["floor"][0] / timed["reference"][0],
                                                                            1.0))
            state[(decay, label)] = state_bytes(opt) / n
            moved[(decay, label)] = traffic(params, opt)
            del opt
            gc.collect()
    print(f"at end:   {load()}")
    print(f"median over {args.rounds} rounds of {args.steps} steps each; ratios taken within each round\n")
    cpu_share = "" if timer.cuda else f" {'CPU share':>9}"
    print(f"{'decay':12} {'implementation':34} {'ms/step':>9} {'GB/s':>7} {'/torch fused':>12} "
          f"{'/floor':>7}{cpu_share} {'state B/param':>13}")
    for (decay, label), rows in samples.items():
        seconds, share, to_reference, to_floor = (statistics.median(column) for column in zip(*rows))
        share = "" if timer.cuda else f" {share:9.2f}"
        state_column = f"{state[(decay, label)]:13.1f}" if label != "floor" else f"{'':>13}"
        print(f"{decay:12} {label:34} {seconds * 1e3:9.2f} {moved[(decay, label)] / seconds / 1e9:7.1f} "
              f"{to_reference:12.2f} {to_floor:7.2f}{share} {state_column}")


if __name__ == "__main__":
    main()
