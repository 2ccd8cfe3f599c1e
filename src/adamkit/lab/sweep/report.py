"""The sweep's findings as sentences computed from its numbers, and report.html."""

import html
import math

from adamkit.lab.page import figures, items, page

FOOTER = "<p>Every trial: <code>sweep.csv</code>; these numbers: <code>summary.json</code>.</p>"


def _pm(mean, std, digits=4):
    if mean is None:
        return "—"
    return f"{mean:.{digits}g}" + (f" ± {std:.2g}" if std is not None else "")


def _slope(s):
    m = s["mean"]
    if m is None or not math.isfinite(m):
        return "—"
    return f"{m:+.2f}" + (f" ± {s['std']:.2f}" if s["std"] is not None and math.isfinite(s["std"]) else "")


def _why(s, shown=3):
    """``" (lr 1 × wd 0.5, seed 0: weight decay factor ...; ...)"``: the first diverged runs' reasons."""
    runs = s.get("diverged_runs") or []
    if not runs:
        return ""
    text = "; ".join(f"lr {r['lr']:g} × wd {r['weight_decay']:g}, seed {r['seed']}: "
                     f"{r['reason'] or 'loss NaN or infinite'}" for r in runs[:shown])
    return f" ({text}{f'; {len(runs) - shown} more' if len(runs) > shown else ''})"


def findings(summary, confirm=None, labels=None):
    """One claim per sentence, each from this sweep's numbers."""
    name = (labels or {}).get
    out = []
    if summary["selection"] != "val":
        out.append(f"Task {summary['task']!r} has no validation split: cells were chosen on "
                   f"{summary['selection']}, so the best values below are optimistic.")
    for o, s in summary["optimizers"].items():
        label = name(o, o)
        if s["best"] is None:
            out.append(f"{label}: every run diverged{_why(s)}.")
            continue
        sentence = f"{label}: {s['verdict']}."
        b = s["best_slope"]
        if b["mean"] is not None and math.isfinite(b["mean"]):
            spread = (f" (± {b['std']:.2f} between seeds)" if b["std"] is not None and math.isfinite(b["std"])
                      else "")
            sentence += f" The best cell's weight decay moves as lr^{b['mean']:.2f}{spread}."
        if s["diverged_cells"]:
            sentence += f" {s['diverged_cells']} of {s['cells']} cells diverged{_why(s)}."
        out.append(sentence)
    ranked = [(o, s["best"]["val"]) for o, s in summary["optimizers"].items() if s["best"]]
    if len(ranked) > 1:
        ranked.sort(key=lambda x: -x[1] if summary["higher_is_better"] else x[1])
        (w, wv), (r, rv) = ranked[0], ranked[1]
        line = (f"Best grid cell: {name(w, w)} ({summary['selection']} {summary['metric']} {wv:.4g}), "
                f"then {name(r, r)} ({rv:.4g}).")
        if confirm is None:
            line += (" A grid's best cell is chosen on the same seeds it is scored on, so its lead is "
                     "optimistic: --confirm K re-runs each best cell on K fresh seeds.")
        out.append(line)
    if confirm:
        for p in confirm["pairs"]:
            a, b = name(p["a"], p["a"]), name(p["b"], p["b"])
            ta, tb = confirm["optimizers"][p["a"]]["test"], confirm["optimizers"][p["b"]]["test"]
            verdict = ("identical on every seed" if p["identical"] else
                       "a difference beyond the seed noise" if p["significant"] else
                       "within the seed noise" if p["p"] is not None else
                       "no test (fewer than 2 finite, varying runs)")
            pv = f"Welch's t-test p = {p['p']:.3g}" if p["p"] is not None else "no p-value"
            out.append(f"On {p['shared_seeds']} fresh seeds, test {summary['metric']}: "
                       f"{a} {_pm(ta['mean'], ta['std'])} vs {b} {_pm(tb['mean'], tb['std'])} "
                       f"({pv}; {a} better on {p['a_better']} of "
                       f"{p['shared_seeds']} seeds): {verdict}.")
    ran = set(summary["optimizers"])
    for run, other, shift, form in (("adamw", "adamw-independent", 1, "independent form (wd × lr0)"),
                                    ("adamw-independent", "adamw", -1, "decoupled form (wd / lr0)")):
        edge = summary["optimizers"].get(run, {}).get("edge_slope", {}).get("mean")
        if run in ran and other not in ran and edge is not None and math.isfinite(edge):
            out.append(f"Read in the {form}, the same {name(run, run)} runs have edge slope {edge + shift:+.2f}: "
                       "for one lr0 the two forms are the same run, so their slopes differ by exactly 1.")
    if {"adamw", "adamw-independent"} <= ran:
        out.append("For one lr0, AdamW (independent) with weight decay wd is the same run as AdamW (decoupled) "
                   "with wd/lr0: the two heatmaps differ by that shear, one decade of wd per decade of lr.")
    return out


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
