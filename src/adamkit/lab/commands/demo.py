"""``adamkit demo``: the regression studies with every optimizer, plots and a report."""

from adamkit.lab.commands.common import add_out, add_run_options, checked, names, output, progress_bar, saving


def add_parser(subparsers):
    d = subparsers.add_parser("demo", help="linear-regression study: SGD, momentum, Adam, L2, L1, AdamW",
                              description="Train the demo studies with every optimizer; write plots, metrics "
                              "and a report.")
    d.add_argument("--backend", default="torch", help="torch (default) or numpy")
    d.add_argument("--optimizers", help="comma-separated subset of: sgd, momentum, adam, adam-l2, adam-l1, "
                   "adamw, adamw-independent (default: all)")
    d.add_argument("--studies", help="comma-separated subset of: line, poly (default: both)")
    add_run_options(d, fields=("steps", "quick", "lr", "weight_decay", "init", "seed"), task=False, init="zeros")
    add_out(d, "demo")
    d.set_defaults(func=main)


def main(args):
    from adamkit.lab import demo
    from adamkit.lab.tasks import TASKS

    steps = args.steps if args.steps is not None else TASKS["line"].quick_budget if args.quick else TASKS["line"].budget
    config = checked(lambda: demo.DemoConfig(
        steps=steps, backend=args.backend, seed=args.seed, init=args.init, lr=args.lr,
        weight_decay=args.weight_decay,
        optimizers=names(args.optimizers) if args.optimizers is not None else demo.DemoConfig.optimizers,
        studies=names(args.studies) if args.studies is not None else demo.DemoConfig.studies))
    out, unique = output(args, "demo")
    total = steps * len(config.optimizers) * len(config.studies)
    with progress_bar(total, args.quiet) as bar:
        results = demo.run(config, progress=bar.update)
    try:
        facts, path = demo.save(results, out, unique)
    except OSError as e:
        raise saving(out, e) from None
    if not args.quiet:
        print("\n".join(f"- {f}" for f in facts))
        print(f"wrote {path}/report.html ({results['seconds']:.1f} s of training)")
    return 0

