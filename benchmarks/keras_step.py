"""Keras optimizer step: adamkit.keras.AdamW against keras.optimizers.AdamW, in one process.

    KERAS_BACKEND=torch python benchmarks/keras_step.py               # GPT-2-small shapes
    KERAS_BACKEND=jax python benchmarks/keras_step.py --layers 2 --vocab 8192 --rounds 9

Runs on the backend named by ``KERAS_BACKEND``, each optimizer stepping the way Keras's
``model.fit`` steps it there: eagerly on torch, under ``tf.function(jit_compile=True)``
on TensorFlow, under ``jax.jit`` (``stateless_apply``, buffers donated) on JAX. Every round
times each contender (median of ``--steps`` steps after a warm-up step), in an order that
rotates from round to round, so that load drifting on a shared machine falls on both
alike; the ratio is the median over rounds of adamkit's time over Keras's taken in the
same round. Beside each round the run reports the machine's load average and the share of
its threads' time the process got (CPU seconds / wall seconds / cores): below 1 means other
jobs took cores from it.
"""

import argparse
import os
import platform
import statistics
import time

import keras
import numpy as np

import adamkit.keras as akk


def gpt2_shapes(d, layers, vocab, context=1024):
    """Parameter shapes of GPT-2 (tied embeddings): 148 tensors for the small model."""
    block = [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return [(vocab, d), (context, d)] + block * layers + [(d,), (d,)]


def make_step(optimizer, shapes, dtype, seed=0):
    """A no-argument callable running one optimizer step on fixed gradients, blocking until done."""
    rng = np.random.default_rng(seed)
    variables = [keras.Variable(rng.standard_normal(s, dtype="float32") * 0.02, dtype=dtype, name=f"w{i}")
                 for i, s in enumerate(shapes)]
    grads = [keras.ops.cast(keras.ops.convert_to_tensor(rng.standard_normal(s, dtype="float32") * 1e-3), dtype)
             for s in shapes]
    optimizer.build(variables)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda: optimizer.apply(grads, variables), jit_compile=True)  # returns when done
    if backend == "jax":
        import jax

        state = {"opt": [v.value for v in optimizer.variables], "train": [v.value for v in variables]}
        apply = jax.jit(lambda opt, g, train: optimizer.stateless_apply(opt, g, train), donate_argnums=(0, 2))

        def step():
            state["train"], state["opt"] = apply(state["opt"], grads, state["train"])
            jax.block_until_ready(state["train"])
        return step
    return lambda: optimizer.apply(grads, variables)  # torch: eager, as model.fit runs it


def machine_load():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def timed(step, steps):
    """Median seconds per step, and the share of the machine's cores this process got meanwhile."""
    times, cpu0, wall0 = [], time.process_time(), time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0) / os.cpu_count()
    return statistics.median(times), share


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounding", default="nearest", choices=["nearest", "kahan", "stochastic"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    shapes = gpt2_shapes(args.width, args.layers, args.vocab)
    n = sum(int(np.prod(s)) for s in shapes)
    extra = {"rounding": args.rounding} if args.rounding != "nearest" else {}
    contenders = {"keras AdamW": keras.optimizers.AdamW(1e-3, weight_decay=0.01),
                  "adamkit AdamW": akk.AdamW(1e-3, weight_decay=0.01, epsilon_hat=True, **extra)}
    steps = {name: make_step(opt, shapes, args.dtype) for name, opt in contenders.items()}
    for step in steps.values():  # compile, build, first-touch
        step()
        step()

    cpu = platform.processor() or platform.machine()
    print(f"backend {keras.backend.backend()} (keras {keras.__version__}), {cpu}, {os.cpu_count()} cores;"
          f" {n / 1e6:.1f}M params in {len(shapes)} tensors, {args.dtype}"
          + (f", rounding={args.rounding}" if extra else ""))
    names = list(steps)
    ratios = []
    for r in range(args.rounds):
        order = names[r % 2:] + names[:r % 2]
        got = {name: timed(steps[name], args.steps) for name in order}
        ratio = got["adamkit AdamW"][0] / got["keras AdamW"][0]
        ratios.append(ratio)
        print(f"round {r}: " + ", ".join(f"{k} {t * 1e3:8.1f} ms (share {s:.2f})" for k, (t, s) in got.items())
              + f", ratio {ratio:.2f}, load {machine_load():.2f}")
    print(f"adamkit AdamW / keras AdamW: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}) over {args.rounds} rounds")


if __name__ == "__main__":
    main()
