"""Sentences about a demo run, computed from its numbers."""

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


def findings(results):
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
