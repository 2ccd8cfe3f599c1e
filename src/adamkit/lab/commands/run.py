"""``adamkit run TASK``: one training run; config.json, metrics.csv (written as it goes),
summary.json and curves.png."""

from dataclasses import asdict

from adamkit.lab.commands.common import (
    add_out,
    add_run_options,
    add_tensorboard,
    checked,
    output,
    progress_bar,
    run_config,
    saving,
    tensorboard_dir,
)


def add_parser(subparsers):
    p = subparsers.add_parser("run", help="train one task with one optimizer",
                              description="Train one task with one optimizer, init and schedule; write the "
                              "metrics as they come, a summary and the learning curves.")
    add_run_options(p)
    add_tensorboard(p)
    add_out(p, "run")
    p.set_defaults(func=main)


def panels(task, config, records):
    """The curves worth drawing for one run: the primary metric on every split that has it,
    the batch loss, the weight norm and, when scheduled, the learning rate."""
    splits = tuple(s for s in ("train", "val", "test") if any(r["split"] == s and r["metric"] == task.primary
                                                              for r in records))
    out = [(task.primary, splits), ("batch_loss", ("train",)), ("weight_norm", ("model",))]
    return out + ([("lr", ("model",))] if config.schedule != "constant" else [])


def main(args):
    from adamkit.lab import plots
    from adamkit.lab.output import CsvRows, atomic_directory, write_json
    from adamkit.lab.run import FIELDS, run
    from adamkit.lab.tasks import TASKS

    config = checked(lambda: run_config(args))
    board_dir = tensorboard_dir(args)
    settings = config.resolved()
    out, unique = output(args, f"run-{config.task}")
    target = atomic_directory(out, unique)
    board = None
    if board_dir is not None:
        from adamkit.lab.board import Board, run_name

        board = Board(board_dir, run_name(config, settings))

    def on_eval(step, new):
        rows.write(new)
        if board:
            board.scalars(new)
    try:
        with target as tmp:
            write_json(tmp / "config.json", {**asdict(config), "resolved": settings})
            rows = CsvRows(tmp / "metrics.csv", FIELDS)
            try:
                with progress_bar(settings["steps"], args.quiet, desc=f"{config.task} {config.optimizer}") as bar:
                    result = run(config, on_eval=on_eval, progress=bar.update)
            finally:
                rows.close()
            if board:
                board.finish(result)
            summary = result.summary()
            write_json(tmp / "summary.json", summary)
            title = (f"{config.task}: {config.optimizer}, lr={settings['lr']:g}, wd={settings['weight_decay']:g}, "
                     f"init={settings['init']}, {config.schedule}, seed {config.seed}")
            chosen = panels(TASKS[config.task], config, result.records)
            plots.metric_panels(result.records, chosen, tmp / "curves.png", title)
    except OSError as e:
        raise saving(out, e) from None
    if not args.quiet:
        primary = result.primary
        if result.diverged:
            print(f"diverged at step {result.diverged_at}: the loss became NaN or infinite (lr={settings['lr']:g})")
        else:
            finals = ", ".join(f"{split} {values[primary]:.4g}" for split, values in result.final.items()
                               if primary in values)
            print(f"final {primary}: {finals} after {settings['steps']} steps")
        print(f"wrote {target.path} ({result.seconds:.1f} s)")
    return 0
