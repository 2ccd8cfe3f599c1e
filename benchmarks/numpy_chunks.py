"""adamkit.numpy's AdamW at several chunk sizes and thread counts, beside torch's fused AdamW.

Every round times each setting, torch's fused AdamW and the floor of step.py over the same
GPT-2 shapes, and prints one line, so a change in the machine during the run shows as it
happens; the summary gives, per setting, the median step and the median of its ratio to torch
fused taken within each round. A chunk size given here is used on one thread
(``CHUNK_BYTES``) and on several (``THREADED_CHUNK_BYTES``) alike.

    python benchmarks/numpy_chunks.py                                # 256 KB to 4 MB, 2 threads
    python benchmarks/numpy_chunks.py --chunks 1M --threads 1,2 --decay l1
"""

import argparse
import concurrent.futures
import statistics
import time

import torch
from step import MODELS, NumpyStep, Timer, floor_pass, make_params

from adamkit.numpy import optim

SIZES = {"K": 1 << 10, "M": 1 << 20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=list(MODELS), default="gpt2-small")
    parser.add_argument("--chunks", default="256K,512K,1M,2M,4M", help="comma-separated chunk sizes (K, M)")
    parser.add_argument("--threads", default="2", help="comma-separated thread counts for adamkit.numpy")
    parser.add_argument("--decay", default="decoupled")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting and round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    timer = Timer(torch.device("cpu"))

    def median_ms(fn):
        return timer(fn, args.steps)[0] * 1e3

    settings = [(chunk, int(n)) for n in args.threads.split(",") for chunk in args.chunks.split(",")]
    pool = concurrent.futures.ThreadPoolExecutor(max(n for _, n in settings))
    optim._pool = lambda: pool
    params = make_params(MODELS[args.model], torch.float32, torch.device("cpu"))
    fused = torch.optim.AdamW(params, lr=1e-3, fused=True)
    floor = floor_pass(sum(p.numel() for p in params), torch.float32, torch.device("cpu"))
    numpy_step = NumpyStep(params, lr=1e-3, weight_decay=0.01, decay=args.decay)
    numpy_step.step()
    fused.step()
    print(f"{args.model}, fp32, decay {args.decay}; torch {torch.__version__} on {torch.get_num_threads()} threads; "
          f"ms per step, median of {args.steps}")
    print("time      " + " ".join(f"{f'{c}/{n}t':>9}" for c, n in settings) + "     fused     floor")
    results = {s: [] for s in settings}
    for _ in range(args.rounds):
        line = {}
        for chunk, threads in settings:
            optim.CHUNK_BYTES = optim.THREADED_CHUNK_BYTES = int(chunk[:-1]) * SIZES[chunk[-1]]
            optim._threads = lambda n=threads: n
            line[chunk, threads] = median_ms(numpy_step.step)
        fused_ms, floor_ms = median_ms(fused.step), median_ms(floor)
        for s, ms in line.items():
            results[s].append((ms, ms / fused_ms))
        print(time.strftime("%H:%M:%S ") + " ".join(f"{ms:9.1f}" for ms in line.values())
              + f" {fused_ms:9.1f} {floor_ms:9.1f}", flush=True)
    print("\nsetting    ms/step  /torch fused (medians over rounds)")
    for (chunk, threads), rows in results.items():
        print(f"{f'{chunk}/{threads}t':>9} {statistics.median(r[0] for r in rows):8.1f} "
              f"{statistics.median(r[1] for r in rows):13.2f}")


if __name__ == "__main__":
    main()
