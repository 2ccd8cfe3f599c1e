"""The lab's findings: sentences computed from the numbers of a demo, a comparison, a sweep or
a search, one claim each. Runs that diverged are named with their reason and left out of
every comparison; a difference within the seed noise is reported as no claim either way."""

import math

import numpy as np


def _final(run, key):
    return run["history"][key][-1]


def _finite(run):
    if not run["history"]["train_loss"]:
        return False
    return all(math.isfinite(v) for v in (*run["w"], run["b"], _final(run, "train_loss"), _final(run, "test_loss")))


def _line(study, runs):
    out = []
    slopes = {o: r["w"][0] for o, r in runs.items()}
    lo, hi = min(slopes, key=slopes.get), max(slopes, key=slopes.get)
    out.append(f"On {study['title']}, fitted slopes range from {slopes[lo]:.3f} ({runs[lo]['label']}) "
               f"to {slopes[hi]:.3f} ({runs[hi]['label']}); the true slope is 2.")
    far = [r["label"] for o, r in runs.items() if abs(slopes[o] - 2) > 0.15 or abs(r["b"]) > 0.3]
    if far:
        out.append(f"Further than 0.15 from slope 2 or 0.3 from intercept 0: {', '.join(far)}.")
    else:
        out.append(f"Every optimizer that finished lands within 0.15 of slope 2 and 0.3 of intercept 0"
                   f"{'' if len(runs) == len(study['runs']) else ' (' + str(len(runs)) + ' finished)'}.")
    return out


def _poly(study, runs):
    out = []
    test = {o: _final(r, "test_loss") for o, r in runs.items()}
    best = min(test, key=test.get)
    base = "adam" if "adam" in runs else None
    line = f"Lowest final test MSE on {study['title']}: {runs[best]['label']} ({test[best]:.3g})"
    if base and base != best:
        line += f", {test[base] / test[best]:.1f}× lower than Adam without decay ({test[base]:.3g})"
    out.append(line + ".")
    if base:
        norm0 = _final(runs[base], "weight_norm")
        decayed = {o: _final(r, "weight_norm") for o, r in runs.items() if r["decay"]}
        if decayed:
            smaller = [o for o, n in decayed.items() if n < norm0]
            detail = ", ".join(f"{runs[o]['label']} {n:.2f}" for o, n in decayed.items())
            verdict = ("every decay mode ends with a smaller one" if len(smaller) == len(decayed)
                       else f"{len(smaller)} of {len(decayed)} decay modes end with a smaller one")
            out.append(f"Adam without decay ends with weight norm {norm0:.2f}; {verdict} ({detail}).")
    if "adamw" in runs and "adamw-independent" in runs:
        dec, ind = runs["adamw"], runs["adamw-independent"]
        same = ind["weight_decay"] / ind["lr"]
        out.append(f"AdamW (independent) with wd={ind['weight_decay']:g} at lr0={ind['lr']:g} equals AdamW "
                   f"(decoupled) with wd={same:g}; against decoupled wd={dec['weight_decay']:g} it ends at "
                   f"test MSE {test['adamw-independent']:.3g} vs {test['adamw']:.3g}.")
    if "sgd" in runs and "adam" in runs:
        ratio = _final(runs["sgd"], "train_loss") / _final(runs["adam"], "train_loss")
        comparison = (f"{ratio:.1f}× Adam's" if ratio > 1.05 else
                      f"{1 / ratio:.1f}× below Adam's" if ratio < 0.95 else "about Adam's")
        why = (": on ill-conditioned polynomial features one step size for every coordinate crawls "
               "along the flat directions, where Adam rescales each coordinate" if ratio > 2 else "")
        out.append(f"SGD's final train MSE is {comparison}{why}.")
    for mode, label in (("adam-l1", "L1"), ("adam-l2", "L2")):
        if mode in runs:
            w = np.abs(np.asarray(runs[mode]["w"]))
            small = int((w < 0.02 * w.max()).sum()) if w.max() > 0 else w.size
            out.append(f"With {label} decay, {small} of {w.size} coefficients end below 2% of the largest.")
    return out


def demo(results):
    """A list of sentences, one claim each, from this run's numbers. Runs that diverged
    (or ended with non-finite weights) are named and left out of every comparison."""
    out = []
    for name, study in results["studies"].items():
        runs = {o: r for o, r in study["runs"].items() if not r["diverged"] and _finite(r)}
        bad = [r for o, r in study["runs"].items() if o not in runs]
        if bad:
            which = "; ".join(f"{r['label']} (lr={r['lr']:g}): {r.get('reason') or 'loss NaN or infinite'}"
                              if r["diverged"] else f"{r['label']} (lr={r['lr']:g}): non-finite weights"
                              for r in bad)
            out.append(f"On {study['title']}, diverged (left out of the comparisons): {which}.")
        if not runs:
            out.append(f"On {study['title']}, no optimizer finished: lower the learning rate.")
            continue
        out += _line(study, runs) if name == "line" else _poly(study, runs)
    return out


# adamkit compare

def _fmt(x):
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4g}"


def comparison(summary):
    """Sentences from :func:`adamkit.lab.compare.summarize`'s numbers."""
    primary, higher = summary["primary"], summary["higher_is_better"]
    v = summary["variants"]
    out = []
    for name, s in v.items():
        if s["diverged"]:
            why = "; ".join(s.get("diverged_reasons") or ["loss NaN or infinite"])
            out.append(f"{name} diverged on {s['diverged']} of {s['seeds']} seeds ({why}); "
                       "those runs are left out of its mean.")
    ok = {n: s for n, s in v.items() if s["test_mean"] is not None and math.isfinite(s["test_mean"])}
    if not ok:
        return out + ["No variant finished on any seed: lower the learning rate."]
    best = (max if higher else min)(ok, key=lambda n: ok[n]["test_mean"])
    out.append(f"Best final test {primary}: {best}, {_fmt(ok[best]['test_mean'])} ± {ok[best]['test_std']:.2g} "
               f"(mean ± std over {len(ok[best]['test'])} seeds).")
    for pair in summary["pairs"]:
        if best not in (pair["a"], pair["b"]):
            continue
        other = pair["b"] if pair["a"] == best else pair["a"]
        if other not in ok:
            continue
        diff = abs(pair["difference"])
        if diff == 0:
            verdict = "the same value"
        elif pair["beyond_noise"] is None:
            verdict = "too few seeds for a noise test (use --seeds 3 or more)"
        elif pair["beyond_noise"]:
            verdict = f"beyond the seed noise (Welch's t-test p = {pair['p']:.2g})"
        else:
            verdict = f"within the seed noise (Welch's t-test p = {pair['p']:.2g}): no claim either way"
        out.append(f"{best} vs {other}: {_fmt(ok[best]['test_mean'])} vs {_fmt(ok[other]['test_mean'])}, "
                   f"a difference of {_fmt(diff)}, {verdict}.")
    if all(len(s["test"]) > 1 and s["test_std"] == 0 for s in ok.values()):
        out.append("Every seed gives the same final value for every variant: with these settings the task is "
                   "deterministic (e.g. full batch from a fixed init), so the seeds measure no noise and "
                   "any difference is exact.")
    claim = _adamw_claim(summary, ok)
    if claim:
        out.append(claim)
    for name, s in ok.items():
        units, hidden = s["distinct_units"], s["hidden_units"]
        if units and hidden and max(units) == 1 and hidden > 1:
            out.append(f"{name}: the first layer ends with 1 distinct unit of {hidden}: every hidden unit "
                       "got the same gradient from the start, so the symmetry never broke.")
    gaps = {n: s["gap_mean"] for n, s in ok.items() if s["gap_mean"] is not None and math.isfinite(s["gap_mean"])}
    if gaps:
        widest = max(gaps, key=lambda n: abs(gaps[n]))
        out.append(f"Largest train/test gap in {primary}: {widest} (test minus train {_fmt(gaps[widest])}).")
    return out


def _adamw_claim(summary, ok):
    """The AdamW paper's claim, on this task: decoupled decay generalizes better than L2."""
    pair = next((p for p in summary["pairs"] if {p["a"], p["b"]} == {"adamw", "adam-l2"}), None)
    if pair is None or not {"adamw", "adam-l2"} <= set(ok):
        return None
    higher = summary["higher_is_better"]
    w, l2 = ok["adamw"]["test_mean"], ok["adam-l2"]["test_mean"]
    claim, numbers = "The claim \"AdamW generalizes better than Adam with L2\"", f"{_fmt(w)} vs {_fmt(l2)}"
    if pair["beyond_noise"] is None:
        return f"{claim} cannot be tested with one seed ({numbers}); use --seeds 3 or more."
    if w == l2:
        return f"{claim} is not shown here: both end at {_fmt(w)}."
    if pair["beyond_noise"]:
        better = w > l2 if higher else w < l2
        return f"{claim} {'holds' if better else 'is reversed'} here: {numbers} (p = {pair['p']:.2g})."
    return f"{claim} is not shown here: {numbers} is within the seed noise (p = {pair['p']:.2g})."


# adamkit sweep

def pm(mean, std, digits=4):
    if mean is None:
        return "—"
    return f"{mean:.{digits}g}" + (f" ± {std:.2g}" if std is not None else "")


def _why(s, shown=3):
    """``" (lr 1 × wd 0.5, seed 0: weight decay factor ...; ...)"``: the first diverged runs' reasons."""
    runs = s.get("diverged_runs") or []
    if not runs:
        return ""
    text = "; ".join(f"lr {r['lr']:g} × wd {r['weight_decay']:g}, seed {r['seed']}: "
                     f"{r['reason'] or 'loss NaN or infinite'}" for r in runs[:shown])
    return f" ({text}{f'; {len(runs) - shown} more' if len(runs) > shown else ''})"


def sweep(summary, confirm=None, labels=None):
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
                       f"{a} {pm(ta['mean'], ta['std'])} vs {b} {pm(tb['mean'], tb['std'])} "
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


def search(summary, labels):
    """Sentences on a TPE search (:func:`adamkit.lab.sweep.search.summarize`)."""
    out = [f"TPE search, {summary['trials']} trials per optimizer, each the mean of {summary['seeds']} seed(s). "
           "A search samples where it expects good values, so it gives no edge or slope: run a grid for those."]
    for o, s in summary["optimizers"].items():
        b = s["best"]
        if b is None:
            out.append(f"{labels.get(o, o)}: every trial diverged{_why(s)}.")
            continue
        out.append(f"{labels.get(o, o)}: best at lr {b['lr']:.3g}, weight decay {b['weight_decay']:.3g} "
                   f"({summary['selection']} {summary['metric']} {b['val']:.4g}, test {b['test']:.4g})"
                   + (f"; {s['diverged']} of {len(s['points'])} trials diverged{_why(s)}." if s["diverged"]
                      else "."))
    return out
