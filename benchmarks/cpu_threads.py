"""The C kernel alone (no optimizer around it) on 1..N threads: how its pool shares a step out.

Times ``adamkit.torch.kernels.cpu.adam`` over the same tensors at each thread count in turn,
round after round, and prints the median, mean, 99th percentile and worst step. Run it beside
another job (``python -c "while True: pass" &``) to see what a pool thread kept off the CPU
costs: the caller never waits for a chunk nobody has taken, only for one a descheduled thread
holds.

    python benchmarks/cpu_threads.py                          # 1M params in 100 tensors, fp32
    python benchmarks/cpu_threads.py --tensors 148 --size 840000
"""

import argparse
import statistics
import time

import torch

from adamkit.torch.kernels import AdamScalars, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--size", type=int, default=10_000, help="elements per tensor")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--steps", type=int, default=500, help="timed steps per thread count and round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if cpu.load() is None:
        raise SystemExit("the C kernel cannot be built here")
    tensors = [[torch.randn(args.size) for _ in range(args.tensors)] for _ in range(2)]
    moments = [[torch.zeros(args.size) for _ in range(args.tensors)] for _ in range(2)]
    steps = [torch.tensor(1.0) for _ in range(args.tensors)]
    h = AdamScalars(1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, 1 - 1e-4, False, False)
    counts = [int(t) for t in args.threads.split(",")]
    times = {n: [] for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            torch.set_num_threads(n)
            for i in range(args.steps + 20):  # the first 20 untimed
                start = time.perf_counter()
                cpu.adam(*tensors, *moments, None, steps, h)
                if i >= 20:
                    times[n].append(time.perf_counter() - start)
    print(f"{args.tensors} tensors of {args.size} fp32 elements; {args.rounds} rounds of {args.steps} steps "
          f"per thread count; torch {torch.__version__}")
    print(f"{'threads':>7} {'median us':>10} {'mean us':>8} {'p99 us':>8} {'max us':>8}")
    for n, ts in times.items():
        ts.sort()
        print(f"{n:7d} {statistics.median(ts) * 1e6:10.0f} {statistics.mean(ts) * 1e6:8.0f} "
              f"{ts[int(0.99 * (len(ts) - 1))] * 1e6:8.0f} {ts[-1] * 1e6:8.0f}")


if __name__ == "__main__":
    main()
