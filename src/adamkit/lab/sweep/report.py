"""The sweep's report.html (its findings: :mod:`adamkit.lab.findings`)."""

import html
import math

from adamkit.lab.findings import pm as _pm
from adamkit.lab.page import figures, items, page

FOOTER = "<p>Every trial: <code>sweep.csv</code>; these numbers: <code>summary.json</code>.</p>"


def _slope(s):
    m = s["mean"]
    if m is None or not math.isfinite(m):
        return "—"
    return f"{m:+.2f}" + (f" ± {s['std']:.2f}" if s["std"] is not None and math.isfinite(s["std"]) else "")


def _best_table(summary, labels):
    head = ("<tr><th>optimizer</th><th>lr</th><th>weight decay</th>"
            f"<th>{summary['selection']} {html.escape(summary['metric'] or '')}</th>"
            f"<th>test {html.escape(summary['metric'] or '')}</th><th>edge slope</th><th>best-cell slope</th></tr>")
    rows = []
    for o, s in summary["optimizers"].items():
        b = s["best"]
        cells = (f"<td>{b['lr']:.3g}</td><td>{b['weight_decay']:.3g}</td><td>{_pm(b['val'], b['val_std'])}</td>"
                 f"<td>{_pm(b['test'], b['test_std'])}</td>" if b else "<td colspan='4'>every run diverged</td>")
        rows.append(f"<tr><td>{html.escape(labels.get(o, o))}</td>{cells}<td>{_slope(s['edge_slope'])}</td>"
                    f"<td>{_slope(s['best_slope'])}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _confirm_table(confirm, summary, labels):
    if not confirm:
        return ""
    rows = "".join(f"<tr><td>{html.escape(labels.get(o, o))}</td><td>{c['lr']:.3g}</td><td>{c['weight_decay']:.3g}</td>"
                   f"<td>{_pm(c['val']['mean'], c['val']['std'])}</td>"
                   f"<td>{_pm(c['test']['mean'], c['test']['std'])}</td>"
                   f"<td>{c['test']['n']} of {c['test']['of']}</td></tr>" for o, c in confirm["optimizers"].items())
    return ("<h2>Best vs best on fresh seeds</h2><table><tr><th>optimizer</th><th>lr</th><th>weight decay</th>"
            f"<th>val</th><th>test</th><th>finite runs</th></tr>{rows}</table>")


def _setup(spec, seconds):
    budget = f"{spec.steps} steps" if spec.steps else ("the task's quick budget" if spec.quick else "the task's budget")
    model = f", model {html.escape(spec.model)}" if spec.model else ""
    took = f" Training time summed over trials: {seconds:.0f} s." if seconds is not None else ""
    return f"Task <b>{html.escape(spec.task)}</b>{model}, {budget}, schedule {html.escape(spec.schedule)}.{took}"


def render(summary, spec, images, facts, confirm=None, labels=None, seconds=None):
    """``images``: {caption: PNG path}. Returns the HTML text."""
    labels = labels or {}
    metric = html.escape(summary["metric"] or "")
    intro = f"""<p>{_setup(spec, seconds)} {len(spec.lrs)} learning rates × {len(spec.weight_decays)} weight decays ×
{spec.seeds} seed(s) per optimizer. Cells are compared on the {summary['selection']} split's {metric}
({'higher' if summary['higher_is_better'] else 'lower'} is better); test values are reported beside them.</p>
<p>The <i>edge</i> of a row is the smallest weight decay above the row's best whose value is worse than the
best by more than {summary['margin']:.3g} (a tenth of the heatmaps' span unless set), or which diverged.
Slopes are least-squares fits of log wd on log lr, per seed; ± is the standard deviation over seeds.
Slope 0: the good weight decay does not move with the learning rate; −1: it moves as 1/lr.
These are what this sweep measured; other models and budgets can draw another picture.</p>"""
    body = (f"<h2>Findings</h2>{items(facts)}<h2>Best configuration per optimizer</h2>{_best_table(summary, labels)}"
            f"{_confirm_table(confirm, summary, labels)}<h2>Heatmaps</h2>{figures(images)}")
    return page(f"lr × weight decay on {spec.task}", intro + body + FOOTER)


def render_search(summary, spec, images, facts, confirm=None, labels=None, seconds=None):
    """The report of a TPE search."""
    labels = labels or {}
    rows = "".join(
        f"<tr><td>{html.escape(labels.get(o, o))}</td><td>{b['lr']:.3g}</td><td>{b['weight_decay']:.3g}</td>"
        f"<td>{b['val']:.4g}</td><td>{b['test']:.4g}</td><td>{len(s['points'])}</td></tr>"
        if (b := s["best"]) else
        f"<tr><td>{html.escape(labels.get(o, o))}</td><td colspan='5'>every trial diverged</td></tr>"
        for o, s in summary["optimizers"].items())
    metric = html.escape(summary.get("metric") or "")
    table = (f"<table><tr><th>optimizer</th><th>lr</th><th>weight decay</th><th>{summary.get('selection', 'val')} "
             f"{metric}</th><th>test {metric}</th><th>trials</th></tr>{rows}</table>")
    intro = (f"<p>{_setup(spec, seconds)} Optuna's TPE sampler over lr in [{min(spec.lrs):g}, {max(spec.lrs):g}] and "
             f"weight decay in [{min(spec.weight_decays):g}, {max(spec.weight_decays):g}] (log scale), "
             f"{spec.trials} trials per optimizer, each the mean of {spec.seeds} seed(s).</p>")
    body = (f"<h2>Findings</h2>{items(facts)}<h2>Best trial per optimizer</h2>{table}"
            f"{_confirm_table(confirm, summary, labels)}<h2>Trials</h2>{figures(images)}")
    return page(f"TPE search on {spec.task}", intro + body + FOOTER)
