"""A self-contained HTML report: images embedded, the metrics table, the rules, the findings."""

import base64
import html


def _table(results):
    rows = []
    for study in results["studies"].values():
        for run in study["runs"].values():
            h = run["history"]
            wd = f"{run['weight_decay']:g} ({run['decay']})" if run["decay"] else "—"
            if run["diverged"]:
                cells = f"<td colspan='3'>diverged at step {run['steps_done'] + 1}</td>"
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


def render(results, images, findings):
    """``images``: {caption: PNG path}. Returns the HTML text."""
    figures = "".join(
        f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, path in images.items())
    config = results["config"]
    facts = "".join(f"<li>{html.escape(f)}</li>" for f in findings)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>adamkit demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f2f2f2; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>adamkit demo: optimizers and weight decay on linear regression</h1>
<p>Backend <b>{html.escape(config['backend'])}</b>, {config['steps']} full-batch steps per optimizer,
initialization <b>{html.escape(config['init'])}</b>, seed {config['seed']}. Objective: half the mean squared
error; the bias is not decayed. Run time {results['seconds']:.1f} s.</p>
<h2>Findings</h2><ul>{facts}</ul>
<h2>Final metrics</h2>{_table(results)}
<h2>Update rules</h2>{_rules(results)}
<p>Adam: <code>m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²; p = p - lr*(m/(1-b1^t))/(sqrt(v/(1-b2^t))+eps)</code>,
b1 = 0.9, b2 = 0.999, eps = 1e-8.</p>
<h2>Figures</h2>{figures}
</body></html>
"""
