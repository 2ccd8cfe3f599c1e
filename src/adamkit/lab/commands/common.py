"""What every command shares: bad input as one line, output directories, progress bars."""

import os
import sys
import time
from pathlib import Path

from adamkit import rules


class UsageError(Exception):
    """Bad input: one line on stderr and exit code 2."""


def names(text):
    """``"a, b,c"`` -> ``("a", "b", "c")``."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def output(args, command):
    """``(directory, unique)`` for ``--out``: the user's directory, which must not exist and
    must be writable, or ``runs/<command>-<time>`` made unique when the results are saved."""
    if args.out is None:
        return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}", True
    out = Path(args.out)
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out {str(out)!r} is a symbolic link to nothing; choose a new directory")
    if out.exists():
        raise UsageError(f"--out {str(out)!r} already exists; choose a new directory")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r} cannot be written (no write access to {str(parent)!r})")
    return out, False


def add_out(parser, command):
    parser.add_argument("--out", help=f"output directory (default runs/{command}-<time>); must not exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def progress_bar(total, quiet, desc="training"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=True if quiet else None,
                leave=False, dynamic_ncols=True)


def checked(make):
    """Build a config with ``make()`` and validate it; a ValueError becomes a UsageError."""
    try:
        config = make()
        config.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    return config


def saving(out, error):
    """A UsageError for an OSError while writing ``out``."""
    return UsageError(f"--out {str(out)!r} cannot be written: {error.strerror or error}")


def add_run_options(parser, plural=False):
    """The options of one run; with ``plural`` the optimizer, init, schedule and seed are left
    to the command (compare takes lists of them)."""
    parser.add_argument("task", help="task name (see `adamkit tasks`)")
    if not plural:
        parser.add_argument("--optimizer", default="adamw", help="sgd, momentum, adam, adam-l2, adam-l1, adamw "
                            "(default) or adamw-independent")
        parser.add_argument("--init", help="initializer: zeros, normal (std 0.01), uniform (±0.01), xavier_uniform, "
                            "xavier_normal (xavier), he_uniform, he_normal (he); default: the task's")
        parser.add_argument("--schedule", default="constant", help="constant (default), cosine, linear, "
                            "warmup_cosine, wsd")
        parser.add_argument("--seed", type=int, default=0, help="seed of the init and the batch order (default 0)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the task's for each optimizer)")
    parser.add_argument("--weight-decay", type=float, help="weight decay (default: the task's for the decay mode)")
    parser.add_argument("--decay", help=f"decay mode: {', '.join(rules.DECAY_MODES)} (default: the optimizer's)")
    parser.add_argument("--steps", type=int, help="training steps (default: the task's budget)")
    parser.add_argument("--quick", action="store_true", help="the task's quick budget: seconds, for smoke runs")
    parser.add_argument("--model", help="the task's model variant (see `adamkit tasks`)")
    parser.add_argument("--data", help="a data file of your own, for tasks that take one (text, recsys)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", default="fp32", help="fp32 (default), fp64 or bf16")
    parser.add_argument("--rounding", default="nearest", help="how updates reach bf16 weights: nearest (default), "
                        "kahan or stochastic")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: reproducible)")


def run_config(args, **fields):
    from adamkit.lab.run import RunConfig

    options = dict(task=args.task, lr=args.lr, weight_decay=args.weight_decay, decay=args.decay, steps=args.steps,
                   quick=args.quick, model=args.model, data=args.data, device=args.device, dtype=args.dtype,
                   rounding=args.rounding, threads=args.threads)
    for name in ("optimizer", "init", "schedule", "seed"):
        if hasattr(args, name):
            options[name] = getattr(args, name)
    return RunConfig(**{**options, **fields})
