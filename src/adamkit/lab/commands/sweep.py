"""``adamkit sweep``: lr × weight-decay heatmaps per optimizer, resumable and shared between machines."""

import os
import sys
from pathlib import Path

from adamkit.lab.commands.common import (
    Terminated,
    UsageError,
    add_run_options,
    add_tensorboard,
    saving,
    tensorboard_dir,
)

# Where the AdamW paper's picture shows: on mnist1d, the MLP with BatchNorm (scale-invariant weights);
# the plain MLP and the CNN draw other pictures.
DEFAULT_MODELS = {"mnist1d": "mlp_bn"}
STORAGE_ENV = "ADAMKIT_STORAGE_URL"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sweep", help="lr × weight-decay heatmaps per optimizer (resumable, distributed)",
        description="Train an lr × weight-decay grid per optimizer through an Optuna storage; draw one heatmap "
        "per optimizer, measure how the good weight decay moves with the learning rate, write sweep.csv, "
        "summary.json and report.html. Kill it at any time and rerun the same command to continue; run the "
        "same command on several machines with one --storage URL to share the grid. On mnist1d the default model "
        "is mlp_bn, the MLP with BatchNorm.")
    add_run_options(p, fields=("steps", "quick", "model", "schedule", "init", "data"), schedule="cosine")
    p.add_argument("--optimizers", default="adam-l2,adamw,adamw-independent",
                   help="comma-separated, each with a decay mode: adam-l2, adam-l1, adamw, adamw-independent "
                   "(default adam-l2,adamw,adamw-independent)")
    p.add_argument("--lr", default="3e-3:3e-1:5", help="learning rates, lo:hi:n log-spaced (default 3e-3:3e-1:5)")
    p.add_argument("--weight-decay", default="1e-5:1e-1:6", help="weight decays, lo:hi:n log-spaced "
                   "(default 1e-5:1e-1:6)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per cell (default 1)")
    p.add_argument("--search", default="grid", help="grid (default) or tpe (Optuna's TPE over the same ranges)")
    p.add_argument("--trials", type=int, help="with --search tpe: trials per optimizer")
    p.add_argument("--confirm", type=int, default=0, metavar="K",
                   help="re-run each optimizer's best cell on K fresh seeds and test the differences")
    p.add_argument("--edge-margin", type=float, help="how much worse than a row's best is too much decay "
                   "(default: a tenth of the heatmaps' span)")
    p.add_argument("--jobs", type=int, help="worker processes on this machine (default: the cores)")
    p.add_argument("--storage", help="Optuna RDB URL, e.g. postgresql://user:password@host/db, shared by many "
                   "machines (default: $ADAMKIT_STORAGE_URL, else sweep.db, SQLite, in the sweep directory); "
                   "a password here is seen by every local user in the process list: prefer --storage-file "
                   f"or ${STORAGE_ENV}")
    p.add_argument("--storage-file", metavar="PATH", help="read the storage URL from the first line of PATH "
                   "(keep it readable by you alone)")
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats; a trial "
                   "silent for 3 is run again (default 10)")
    p.add_argument("--out", help="sweep directory (default runs/sweep-<task>-<settings hash>); rerun with the "
                   "same one to continue")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    add_tensorboard(p)
    p.set_defaults(func=main)


def spec_from(args):
    """The :class:`SweepSpec` of the command line; ValueError on bad input."""
    from adamkit.lab import sweep
    from adamkit.lab.commands.common import names

    model = args.model or DEFAULT_MODELS.get(args.task)
    spec = sweep.SweepSpec(task=args.task, optimizers=names(args.optimizers), lrs=sweep.log_range(args.lr, "--lr"),
                           weight_decays=sweep.log_range(args.weight_decay, "--weight-decay"), seeds=args.seeds,
                           steps=args.steps, quick=args.quick, model=model, schedule=args.schedule, init=args.init,
                           data=args.data, search=args.search, trials=args.trials)
    sweep.validate(spec)
    return spec


def storage_url(args):
    """The storage URL from --storage, --storage-file or $ADAMKIT_STORAGE_URL (None: the embedded one)."""
    if args.storage is not None and args.storage_file is not None:
        raise UsageError("--storage and --storage-file: give one of them")
    if args.storage_file is not None:
        try:
            with open(args.storage_file, encoding="utf-8") as f:
                lines = [line.strip() for line in f.read(65536).splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise UsageError(f"--storage-file {args.storage_file!r} cannot be read: {reason}") from None
        if not lines:
            raise UsageError(f"--storage-file {args.storage_file!r} is empty; expected one storage URL")
        return lines[0]
    if args.storage is not None:
        return args.storage
    return os.environ.get(STORAGE_ENV) or None


def main(args):
    from adamkit.lab import sweep
    from adamkit.lab.sweep.runner import SweepMismatch
    from adamkit.lab.sweep.storage import StorageError

    try:
        spec = spec_from(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    url = storage_url(args)
    board_dir = tensorboard_dir(args)
    for name in ("jobs", "heartbeat"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{name} must be an integer >= 1, got {value}")
    if args.confirm and args.confirm < 2:
        raise UsageError(f"confirm must be an integer >= 2 (seeds to compare), got {args.confirm}")
    if args.edge_margin is not None and not args.edge_margin > 0:
        raise UsageError(f"edge margin must be > 0, got {args.edge_margin}")
    out = Path(args.out or f"runs/sweep-{spec.task}-{spec.fingerprint}")
    if not args.quiet and args.model is None and spec.model:
        print(f"model {spec.model}: the default sweep model for {spec.task} (--model to change)", file=sys.stderr)
    jobs = args.jobs or os.cpu_count() or 1
    bars = {}

    def progress(stage, done, total):
        if args.quiet:
            return
        from adamkit.lab.commands.common import progress_bar

        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = progress_bar(total, False, desc=f"{spec.task} {stage}")
            bar.unit = "trial"
        bar.update(done - bar.n)

    try:
        summary = sweep.run_sweep(spec, out, storage=url, jobs=jobs, heartbeat=args.heartbeat,
                                  confirm=args.confirm, margin=args.edge_margin, progress=progress,
                                  tensorboard=board_dir)
    except (SweepMismatch, StorageError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise saving(out, e) from None
    except RuntimeError as e:
        print(f"adamkit: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: finished trials are kept in the storage

        how = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"\nadamkit: {how}; finished trials are kept: rerun the same command to continue", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        for bar in bars.values():
            bar.close()
    if not args.quiet:
        print("\n".join(f"- {f}" for f in summary["findings"]))
        print(f"wrote {out}/report.html")
    return 0
