"""``adamkit compare TASK``: optimizers (× inits × schedules) over several seeds, in parallel;
learning curves with mean ± std bands, a final-metric table, the seed-noise test, a report."""

from dataclasses import asdict

from adamkit.lab.commands.common import (
    UsageError,
    add_out,
    add_run_options,
    add_tensorboard,
    checked,
    names,
    output,
    progress_bar,
    run_config,
    saving,
    tensorboard_dir,
)


def add_parser(subparsers):
    p = subparsers.add_parser("compare", help="compare optimizers, inits or schedules over seeds",
                              description="Train every optimizer × init × schedule on several seeds and report "
                              "mean ± std, the train/test gap and whether differences exceed the seed noise "
                              "(Welch's t-test).")
    add_run_options(p, plural=True)
    p.add_argument("--optimizers", default="sgd,adam,adam-l2,adamw",
                   help="comma-separated (default sgd,adam,adam-l2,adamw)")
    p.add_argument("--inits", help="comma-separated initializers, e.g. zeros,normal,xavier,he (default: the task's)")
    p.add_argument("--schedules", default="constant", help="comma-separated, e.g. constant,cosine,wsd")
    p.add_argument("--precisions", help="comma-separated dtype[-rounding], e.g. fp32,bf16,bf16-kahan,bf16-stochastic "
                   "(default: --dtype with --rounding)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant: 0, 1, ... (default 3)")
    p.add_argument("--jobs", type=int, help="parallel processes (default: the cores)")
    add_tensorboard(p)
    add_out(p, "compare")
    p.set_defaults(func=main)


def _panels(task, records):
    """Test and train curves of the primary metric (where the task has them), the weight
    norm and the batch loss."""
    present = {(r["split"], r["metric"]) for r in records}
    wanted = [(task.primary, "test"), (task.primary, "train"), ("weight_norm", "model"), ("batch_loss", "train")]
    return [(metric, (split,)) for metric, split in wanted if (split, metric) in present]


def main(args):
    from adamkit.lab import compare, findings, plots
    from adamkit.lab.output import CsvRows, atomic_directory, write_json, write_text
    from adamkit.lab.report import comparison
    from adamkit.lab.run import FIELDS, clean
    from adamkit.lab.tasks import TASKS

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"jobs must be an integer >= 1, got {args.jobs}")
    inits = names(args.inits) if args.inits is not None else (None,)
    config = checked(lambda: compare.CompareConfig(
        run_config(args, seed=0), optimizers=names(args.optimizers), inits=inits,
        schedules=names(args.schedules), seeds=args.seeds,
        precisions=names(args.precisions) if args.precisions is not None else (None,)))
    board_dir = tensorboard_dir(args)
    task = TASKS[config.base.task]
    runs = config.runs()
    out, unique = output(args, f"compare-{task.name}")
    target = atomic_directory(out, unique)
    try:
        with target as tmp:
            write_json(tmp / "config.json", clean({**asdict(config), "runs": len(runs)}))
            rows = CsvRows(tmp / "metrics.csv", FIELDS)
            try:
                with progress_bar(len(runs), args.quiet, desc=f"{task.name}: runs") as bar:
                    def finished(result):
                        rows.write(result.records)
                        if board_dir is not None:
                            from adamkit.lab.board import run_name, write

                            write(board_dir, run_name(result.config, result.settings), result)
                        bar.update(1)

                    results = compare.compare(config, jobs=args.jobs, on_result=finished)
            finally:
                rows.close()
            summary = compare.summarize(results)
            facts = findings.comparison(summary)
            write_json(tmp / "summary.json", clean({**summary, "findings": facts,
                                                    "runs": [r.summary() for r in results]}))
            records = [r for result in results for r in result.records]
            images = {"Learning curves (mean ± std over seeds)": tmp / "curves.png",
                      "Final test metric": tmp / "final.png"}
            plots.metric_panels(records, _panels(task, records), images["Learning curves (mean ± std over seeds)"],
                                f"{task.name}: {len(runs)} runs")
            plots.final_bars(summary, images["Final test metric"])
            settings = results[0].settings
            described = (f"Task {task.name} ({task.summary}); {settings['steps']} steps per run, {config.seeds} "
                         f"seeds per variant, model {settings['model']}, torch {settings['torch']} with "
                         f"{settings['threads']} thread(s) per run; {summary['seconds']:.0f} s of training in all.")
            write_text(tmp / "report.html", comparison(summary, facts, images, described))
    except OSError as e:
        raise saving(out, e) from None
    if not args.quiet:
        print("\n".join(f"- {f}" for f in facts))
        print(f"wrote {target.path}/report.html")
    return 0
