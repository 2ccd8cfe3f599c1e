"""The ``adamkit`` command line (also ``python -m adamkit``)."""

import argparse
import os
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """Bad input: one line on stderr and exit code 2."""


def _names(text):
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _check_writable(out):
    out = Path(out)
    if out.exists():
        raise UsageError(f"--out {str(out)!r} already exists; choose a new directory")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r} cannot be written (no write access to {str(parent)!r})")


def _demo(args):
    from tqdm import tqdm

    from adamkit.lab import demo

    config = demo.DemoConfig(steps=args.steps, backend=args.backend, seed=args.seed, init=args.init,
                             lr=args.lr, weight_decay=args.weight_decay,
                             optimizers=_names(args.optimizers) if args.optimizers else demo.DemoConfig.optimizers,
                             studies=_names(args.studies) if args.studies else demo.DemoConfig.studies)
    try:
        config.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_writable(out)
    total = args.steps * len(config.optimizers) * len(config.studies)
    with tqdm(total=total, desc="training", unit="step", file=sys.stderr,
              disable=True if args.quiet else None, leave=False) as bar:
        results = demo.run(config, progress=bar.update)
    try:
        facts = demo.save(results, out)
    except OSError as e:
        raise UsageError(f"--out {str(out)!r} cannot be written: {e.strerror or e}") from None
    if not args.quiet:
        print("\n".join(f"- {f}" for f in facts))
        print(f"wrote {out}/report.html ({results['seconds']:.1f} s of training)")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="adamkit", description="adamkit lab: see how optimizers, weight decay, "
                                "initialization and schedules change training.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="linear-regression study: GD, momentum, Adam, L2, L1, AdamW",
                       description="Train the demo studies with every optimizer; write plots, metrics and a report.")
    d.add_argument("--backend", default="torch", help="torch (default) or numpy")
    d.add_argument("--optimizers", help="comma-separated subset of: gd, momentum, adam, adam_l2, adam_l1, "
                   "adamw, adamw_independent (default: all)")
    d.add_argument("--studies", help="comma-separated subset of: line, poly (default: both)")
    d.add_argument("--steps", type=int, default=2000, help="full-batch steps per optimizer (default 2000)")
    d.add_argument("--lr", type=float, help="one learning rate for every optimizer (default: each its own)")
    d.add_argument("--weight-decay", type=float, help="one weight decay for every decay mode "
                   "(default: each study's own per mode)")
    d.add_argument("--init", default="zeros", help="weight initializer from adamkit.init (default zeros)")
    d.add_argument("--seed", type=int, default=0, help="data and initialization seed (default 0)")
    d.add_argument("--out", help="output directory (default runs/demo-<timestamp>); must not exist")
    d.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    d.set_defaults(func=_demo)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"adamkit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
