"""Sentences about a demo run, computed from its numbers."""

import numpy as np


def _final(run, key):
    return run["history"][key][-1]


def _line(study):
    runs = study["runs"]
    out = []
    slopes = {o: r["w"][0] for o, r in runs.items()}
    lo, hi = min(slopes, key=slopes.get), max(slopes, key=slopes.get)
    out.append(f"On {study['title']}, fitted slopes range from {slopes[lo]:.3f} ({runs[lo]['label']}) "
               f"to {slopes[hi]:.3f} ({runs[hi]['label']}); the true slope is 2.")
    far = [r["label"] for o, r in runs.items() if abs(slopes[o] - 2) > 0.15 or abs(r["b"]) > 0.3]
    if far:
        out.append(f"Further than 0.15 from slope 2 or 0.3 from intercept 0: {', '.join(far)}.")
    else:
        out.append("Every optimizer lands within 0.15 of slope 2 and 0.3 of intercept 0.")
    return out


def _poly(study):
    runs = study["runs"]
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
    if "adamw" in runs and "adamw_independent" in runs:
        dec, ind = runs["adamw"], runs["adamw_independent"]
        same = ind["weight_decay"] / ind["lr"]
        out.append(f"AdamW (independent) with wd={ind['weight_decay']:g} at lr0={ind['lr']:g} equals AdamW "
                   f"(decoupled) with wd={same:g}; against decoupled wd={dec['weight_decay']:g} it ends at "
                   f"test MSE {test['adamw_independent']:.3g} vs {test['adamw']:.3g}.")
    if "gd" in runs and "adam" in runs:
        ratio = _final(runs["gd"], "train_loss") / _final(runs["adam"], "train_loss")
        comparison = (f"{ratio:.1f}× Adam's" if ratio > 1.05 else
                      f"{1 / ratio:.1f}× below Adam's" if ratio < 0.95 else "about Adam's")
        why = (": on ill-conditioned polynomial features one step size for every coordinate crawls "
               "along the flat directions, where Adam rescales each coordinate" if ratio > 2 else "")
        out.append(f"GD's final train MSE is {comparison}{why}.")
    for mode, label in (("adam_l1", "L1"), ("adam_l2", "L2")):
        if mode in runs:
            w = np.abs(np.asarray(runs[mode]["w"]))
            small = int((w < 0.02 * w.max()).sum()) if w.max() > 0 else w.size
            out.append(f"With {label} decay, {small} of {w.size} coefficients end below 2% of the largest.")
    return out


def findings(results):
    """A list of sentences, one claim each, from this run's numbers."""
    out = []
    for name, study in results["studies"].items():
        out += _line(study) if name == "line" else _poly(study)
    return out
