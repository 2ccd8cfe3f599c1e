"""What every command shares: bad input as one line, output directories, progress bars."""

import os
import sys
import time
from pathlib import Path


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
