"""``adamkit advise``: a weight-decay suggestion with its reasoning, or what a sweep measured."""

import json
import math
from pathlib import Path

from adamkit.lab.commands.common import UsageError


def add_parser(subparsers):
    p = subparsers.add_parser("advise", help="suggest a weight decay, with the reasoning and the numbers",
                              description="Suggest a weight decay from the AdamW paper's normalized weight decay "
                              "and the EMA-timescale rule, converted exactly between decay modes; or, with "
                              "--sweep DIR, read the best cell and the too-much-decay edge a sweep measured.")
    p.add_argument("--dataset-size", type=int, help="training examples N")
    p.add_argument("--batch-size", type=int, help="batch size B")
    p.add_argument("--epochs", type=float, help="epochs E")
    p.add_argument("--lr", type=float, help="base learning rate lr0")
    p.add_argument("--decay", default="decoupled", help="decoupled (default: torch.optim.AdamW's) or independent "
                   "(the paper's)")
    p.add_argument("--lambda-norm", type=float, default=0.05, help="normalized weight decay (default 0.05; the "
                   "paper used 0.025-0.05)")
    p.add_argument("--sweep", help="a finished sweep directory: report what it measured instead")
    p.set_defaults(func=main)


def _from_sweep(args):
    from adamkit.lab.advise import from_sweep

    path = Path(args.sweep) / "summary.json"
    if not path.is_file():
        raise UsageError(f"--sweep {args.sweep!r} holds no finished sweep (no summary.json); run `adamkit sweep` "
                         "to the end first")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"--sweep {args.sweep!r}: {path.name} cannot be read: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, nested beyond reason
        raise UsageError(f"--sweep {args.sweep!r}: {path.name} is not JSON ({_one_line(e)})") from None
    try:
        return from_sweep(summary, args.lr)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"--sweep {args.sweep!r}: {path.name} is not a sweep summary ({_one_line(e)})") from None


def _one_line(error):
    return repr(str(error))[1:-1][:300]


def main(args):
    from adamkit.lab.advise import Advice

    if args.sweep is not None:
        if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
            raise UsageError(f"lr must be a finite number > 0, got {args.lr!r}")
        print("\n".join(_from_sweep(args)))
        return 0
    missing = [f"--{n.replace('_', '-')}" for n in ("dataset_size", "batch_size", "epochs", "lr")
               if getattr(args, n) is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (or give --sweep DIR)")
    try:
        advice = Advice(args.dataset_size, args.batch_size, args.epochs, args.lr, args.decay, args.lambda_norm)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print("\n".join(advice.lines()))
    return 0
