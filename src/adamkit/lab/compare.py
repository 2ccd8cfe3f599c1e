"""``compare``: one task, several variants (optimizers × inits × schedules), several seeds.

Every run goes through :func:`adamkit.lab.run.run` with one torch thread, in parallel
processes. :func:`summarize` turns the rows into per-variant mean ± std of the final
metrics, the train/test gap, divergences, and Welch's t-test for each pair of variants;
:func:`adamkit.lab.findings.comparison` says in words what the numbers show, including when a difference is
within the seed noise.
"""

import itertools
import math
import os
from dataclasses import dataclass, replace

from adamkit.lab import results
from adamkit.lab.run import RunConfig, run

MAX_RUNS = 100_000  # past this a typo, not a plan (each run trains a model)
ALPHA = 0.05  # a pair differs beyond the seed noise when Welch's t-test gives p < ALPHA


@dataclass(frozen=True)
class CompareConfig:
    base: RunConfig                      # task and shared settings; optimizer/init/schedule/seed vary
    optimizers: tuple = ("sgd", "adam", "adam-l2", "adamw")
    inits: tuple = (None,)               # None: the task's default
    schedules: tuple = ("constant",)
    precisions: tuple = (None,)          # None: the base's; else fp32, bf16, bf16-kahan, bf16-stochastic, ...
    seeds: int = 3

    def validate(self):
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        runs = self.seeds * len(self.optimizers) * len(self.inits) * len(self.schedules) * len(self.precisions)
        if runs > MAX_RUNS:
            raise ValueError(f"the comparison has {runs} runs (seeds × optimizers × inits × schedules × "
                             f"precisions); at most {MAX_RUNS}")
        for field, values in (("optimizers", self.optimizers), ("inits", self.inits),
                              ("schedules", self.schedules), ("precisions", self.precisions)):
            if not values:
                raise ValueError(f"{field}: choose at least one")
            if len(set(values)) < len(values):
                raise ValueError(f"{field}: {', '.join(map(str, values))} names one twice")
            seen = {}
            for value in values:  # two spellings of one variant would be merged into one
                same = seen.setdefault(_canonical(field, value), value)
                if same != value:
                    raise ValueError(f"{field}: {same} and {value} name the same "
                                     f"{field[:-1]} ({_canonical(field, value)}); give it once")
        for config in self.runs():
            config.validate()

    def runs(self):
        """Every run, seed-major so that a partial comparison has every variant."""
        return [replace(self.base, optimizer=o, init=i, schedule=s, seed=seed, **_precision(p))
                for seed, o, i, s, p in itertools.product(range(self.seeds), self.optimizers, self.inits,
                                                          self.schedules, self.precisions)]


def _canonical(field, value):
    """The variant a name stands for: ``xavier`` is ``xavier_normal``, ``fp32-nearest`` is ``fp32``."""
    from adamkit.lab.run import INIT_ALIASES

    if field == "inits" and value is not None:
        return INIT_ALIASES.get(value, value)
    if field == "precisions" and value is not None:
        dtype, _, rounding = value.partition("-")
        return dtype if rounding in ("", "nearest") else value
    return value


def _precision(name):
    """``bf16-kahan`` -> dtype bf16, rounding kahan; None keeps the base's."""
    if name is None:
        return {}
    dtype, _, rounding = name.partition("-")
    return {"dtype": dtype, "rounding": rounding or "nearest"}


def _one(config):
    result = run(config)
    result.model = None  # stays in the worker
    return result


def _quiet_worker(parent=None):
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    def watch():  # a parent killed outright (SIGKILL) leaves no one to read the results: stop
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if parent is not None:
        threading.Thread(target=watch, daemon=True).start()


def default_jobs():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def compare(config: CompareConfig, jobs=None, on_result=None):
    """Run every configuration; ``on_result(result)`` as each finishes. Returns the results in
    run order. ``jobs`` processes (default: the cores); 1 runs in this process."""
    config.validate()
    configs = config.runs()
    jobs = min(jobs or default_jobs(), len(configs))
    done = {}
    if jobs == 1:
        for k, c in enumerate(configs):
            done[k] = _one(c)
            if on_result:
                on_result(done[k])
        return [done[k] for k in range(len(configs))]
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_quiet_worker, initargs=(os.getpid(),))
    try:
        for k, result in pool.imap_unordered(_indexed, list(enumerate(configs))):
            done[k] = result
            if on_result:
                on_result(result)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return [done[k] for k in range(len(configs))]


def _indexed(item):
    k, config = item
    return k, _one(config)


def summarize(runs):
    """Per-variant statistics and pairwise tests, JSON-ready (NaN becomes None when written)."""
    records = [r for result in runs for r in result.records]
    first = runs[0]
    primary, higher = first.primary, first.higher_is_better
    diverged = {(results.variant(result.records[0]), result.config.seed)
                for result in runs if result.diverged and result.records}
    varying = results.varying(records)
    test = results.finals(records, "test", primary, diverged)
    train = results.finals(records, "train", primary, diverged)
    val = results.finals(records, "val", primary, diverged)
    units = results.finals(records, "model", "distinct_units")
    keys = list(dict.fromkeys(results.variant(r) for r in records))
    variants = {}
    for key in keys:
        seeds = [result for result in runs if result.records and results.variant(result.records[0]) == key]
        gap = [test.get(key, {}).get(s, math.nan) - train.get(key, {}).get(s, math.nan)
               for s in test.get(key, {})]
        m, sd = results.mean_std(test.get(key, {}).values())
        variants[results.label(key, varying)] = {
            "optimizer": key[0], "init": key[1], "schedule": key[2],
            "seeds": len(seeds), "diverged": sum(r.diverged for r in seeds),
            "diverged_reasons": [f"seed {r.config.seed}: {r.diverged_reason}" for r in seeds if r.diverged],
            "test_mean": m, "test_std": sd, "test": list(test.get(key, {}).values()),
            "val_mean": results.mean_std(val.get(key, {}).values())[0],
            "train_mean": results.mean_std(train.get(key, {}).values())[0],
            "gap_mean": results.mean_std(gap)[0],
            "distinct_units": sorted({int(v) for v in units.get(key, {}).values()}),
            "hidden_units": seeds[0].settings.get("hidden_units") if seeds else None,
            "lr": seeds[0].settings["lr"] if seeds else None,
            "weight_decay": seeds[0].settings["weight_decay"] if seeds else None,
            "decay": seeds[0].settings["decay"] if seeds else None}
    pairs = []
    names = list(variants)
    for a, b in itertools.combinations(names, 2):
        t, p = results.welch(variants[a]["test"], variants[b]["test"])
        pairs.append({"a": a, "b": b, "difference": variants[a]["test_mean"] - variants[b]["test_mean"],
                      "t": t, "p": p, "beyond_noise": bool(p < ALPHA) if math.isfinite(p) else None})
    return {"task": first.config.task, "primary": primary, "higher_is_better": higher, "test": "Welch's t-test "
            f"on the final test {primary} across seeds, two-sided, p < {ALPHA} counts as beyond the seed noise",
            "variants": variants, "pairs": pairs, "varying": list(varying),
            "seconds": sum(r.seconds for r in runs)}
