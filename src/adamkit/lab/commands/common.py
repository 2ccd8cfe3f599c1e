"""What every command shares: bad input as one line, output directories, progress bars."""

import os
import sys
import time
from pathlib import Path


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every half-written output is removed on the way out."""


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


ONE_RUN = ("optimizer", "init", "schedule", "seed")  # what compare takes lists of instead
SHARED = ("lr", "weight_decay", "decay", "steps", "quick", "model", "data", "device", "dtype", "rounding", "threads")


def add_run_options(parser, plural=False, fields=None, task=True, **defaults):
    """The options of one run, from :data:`adamkit.lab.run.RUN_OPTIONS` (declared there once):
    ``fields`` (default: every one; with ``plural`` those of :data:`ONE_RUN` are left to the
    command, which takes lists of them), with ``defaults`` overriding :class:`RunConfig`'s."""
    from dataclasses import fields as dataclass_fields

    from adamkit.lab.run import RUN_OPTIONS, RunConfig

    if task:
        parser.add_argument("task", help="task name (see `adamkit tasks`)")
    if fields is None:
        fields = SHARED if plural else (*ONE_RUN, *SHARED)
    config_defaults = {f.name: f.default for f in dataclass_fields(RunConfig)}
    for name in fields:
        option = RUN_OPTIONS[name]
        default = defaults.get(name, config_defaults[name])
        if option.type is bool:
            parser.add_argument(option.flag, action="store_true", help=option.help)
            continue
        said = option.default_text if default is None else default
        parser.add_argument(option.flag, type=option.type, default=default,
                            help=f"{option.help} (default: {said})" if said is not None else option.help)


def add_tensorboard(parser):
    parser.add_argument("--tensorboard", metavar="DIR", help="also write each run's metrics (scalars) and settings "
                        "(hparams) for TensorBoard, one subdirectory of DIR per run; needs the tensorboard package")


def tensorboard_dir(args):
    """``--tensorboard``'s directory, or None; a UsageError, before anything is trained, where the
    tensorboard package is missing."""
    if getattr(args, "tensorboard", None) is None:
        return None
    from adamkit.lab.board import available

    missing = available()
    if missing:
        raise UsageError(missing)
    where = Path(args.tensorboard)
    while not where.exists():
        where = where.parent
    if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
        raise UsageError(f"--tensorboard {args.tensorboard!r} cannot be written (no write access to {str(where)!r})")
    return args.tensorboard


def run_config(args, **fields):
    from adamkit.lab.run import RUN_OPTIONS, RunConfig

    options = {name: getattr(args, name) for name in ("task", *RUN_OPTIONS) if hasattr(args, name)}
    return RunConfig(**{**options, **fields})
