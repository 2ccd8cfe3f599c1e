"""What the demo's and compare's reports show; :mod:`adamkit.lab.page` builds the page."""

import html

from adamkit.lab.page import figures, items, page


def _table(results):
    rows = []
    for study in results["studies"].values():
        for run in study["runs"].values():
            h = run["history"]
            wd = f"{run['weight_decay']:g} ({run['decay']})" if run["decay"] else "—"
            if run["diverged"]:
                reason = run.get("reason") or f"at step {run['steps_done'] + 1}"
                cells = f"<td colspan='3'>diverged: {html.escape(reason)}</td>"
            else:
                cells = "".join(f"<td>{h[k][-1]:.4g}</td>" for k in ("train_loss", "test_loss", "weight_norm"))
            rows.append(f"<tr><td>{html.escape(study['title'])}</td><td>{html.escape(run['label'])}</td>"
                        f"<td>{run['lr']:g}</td><td>{wd}</td>{cells}</tr>")
    head = ("<tr><th>study</th><th>optimizer</th><th>lr</th><th>weight decay</th><th>train MSE</th>"
            "<th>test MSE</th><th>‖w‖₂</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _rules(results):
    seen = {}
    for study in results["studies"].values():
        for run in study["runs"].values():
            seen.setdefault(run["label"], run["rule"])
    items = "".join(f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>"
                    for k, v in seen.items())
    return f"<table><tr><th>optimizer</th><th>update rule (g: gradient, p: parameter)</th></tr>{items}</table>"


def _num(x, digits=4):
    return "—" if x is None or x != x or x in (float("inf"), float("-inf")) else f"{x:.{digits}g}"


def comparison(summary, findings, images, config):
    """The HTML of ``adamkit compare``: findings, the final-metric table with mean ± std and
    the train/test gap, the noise test of every pair, the figures."""
    primary = html.escape(summary["primary"])
    rows = []
    for name, v in summary["variants"].items():
        wd = f"{v['weight_decay']:g} ({v['decay']})" if v["decay"] else "—"
        units = ", ".join(map(str, v["distinct_units"])) if v["distinct_units"] else "—"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{_num(v['lr'])}</td><td>{wd}</td>"
                    f"<td>{v['seeds'] - v['diverged']} of {v['seeds']}</td>"
                    f"<td>{_num(v['test_mean'])} ± {_num(v['test_std'], 2)}</td><td>{_num(v['val_mean'])}</td>"
                    f"<td>{_num(v['train_mean'])}</td><td>{_num(v['gap_mean'])}</td>"
                    f"<td>{units} of {v['hidden_units'] or '—'}</td></tr>")
    table = (f"<table><tr><th>variant</th><th>lr</th><th>weight decay</th><th>finished</th>"
             f"<th>test {primary} (mean ± std)</th><th>val</th><th>train</th><th>gap (test − train)</th>"
             f"<th>distinct first-layer units</th></tr>{''.join(rows)}</table>")
    pairs = "".join(
        f"<tr><td>{html.escape(p['a'])}</td><td>{html.escape(p['b'])}</td><td>{_num(p['difference'])}</td>"
        f"<td>{_num(p['t'], 3)}</td><td>{_num(p['p'], 2)}</td><td>"
        + ("too few seeds" if p["beyond_noise"] is None else "beyond the seed noise" if p["beyond_noise"]
           else "within the seed noise") + "</td></tr>" for p in summary["pairs"])
    return page(f"adamkit compare: {summary['task']}", f"""<p>{html.escape(config)}</p>
<h2>Findings</h2>{items(findings)}
<h2>Final metrics</h2>{table}
<h2>Is the difference beyond the seed noise?</h2>
<p>{html.escape(summary['test'])}.</p>
<table><tr><th>a</th><th>b</th><th>mean a − mean b</th><th>t</th><th>p</th><th>verdict</th></tr>{pairs}</table>
<h2>Figures</h2>{figures(images)}""")


def render(results, images, findings):
    """``images``: {caption: PNG path}. Returns the HTML text."""
    config = results["config"]
    return page("adamkit demo report", f"""<p>Backend <b>{html.escape(config['backend'])}</b>,
{config['steps']} full-batch steps per optimizer, initialization <b>{html.escape(config['init'])}</b>,
seed {config['seed']}. Objective: half the mean squared error; the bias is not decayed.
Run time {results['seconds']:.1f} s.</p>
<h2>Findings</h2>{items(findings)}
<h2>Final metrics</h2>{_table(results)}
<h2>Update rules</h2>{_rules(results)}
<p>Adam: <code>m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²; p = p - lr*(m/(1-b1^t))/(sqrt(v/(1-b2^t))+eps)</code>,
b1 = 0.9, b2 = 0.999, eps = 1e-8.</p>
<h2>Figures</h2>{figures(images)}""", heading="adamkit demo: optimizers and weight decay on linear regression")
