"""``adamkit tasks``: what each task trains, on which data, and how it is measured."""

import textwrap


def add_parser(subparsers):
    p = subparsers.add_parser("tasks", help="list the tasks", description="List every task: data source, "
                              "models, metric, baseline, default and quick budgets.")
    p.set_defaults(func=main)


def describe(task):
    better = "higher" if task.higher_is_better else "lower"
    lines = [f"data:     {task.data_source}",
             f"models:   {', '.join(task.models)} (default {task.models[0]}); init {task.init}",
             f"metric:   {task.metric_text} ('{task.primary}', {better} is better)",
             f"baseline: {task.baseline}",
             f"budget:   {task.budget} steps, --quick {task.quick_budget}"]
    wrapped = [textwrap.fill(line, 100, subsequent_indent=" " * 10) for line in lines]
    return f"{task.name}: {task.summary}\n" + textwrap.indent("\n".join(wrapped), "  ")


def main(args):
    from adamkit.lab.tasks import TASKS

    print("\n\n".join(describe(task) for task in TASKS.values()))
    return 0
