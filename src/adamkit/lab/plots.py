"""The lab's figures (matplotlib, no display needed). Each function saves one PNG."""

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9,
                     "axes.titlesize": 10, "legend.fontsize": 8})


def colors(names):
    """One fixed color per optimizer, the same in every figure."""
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def finite(values, limit=1e100):
    """``values`` as a float array with non-finite and absurd magnitudes (a run blowing
    up) replaced by NaN, which matplotlib leaves out instead of failing or drawing to infinity."""
    a = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        a[~(np.abs(a) < limit)] = np.nan
    return a


def _spans_decades(values):
    values = finite(values)
    values = values[np.isfinite(values) & (values > 0)]
    return values.size and values.max() / values.min() > 30


def _panels(results, height=3.6):
    names = list(results["studies"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.6 * len(names), height), squeeze=False)
    return fig, dict(zip(names, axes[0]))


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def loss_curves(results, path):
    """Train (solid) and test (dashed) MSE against the step, one panel per study."""
    fig, axes = _panels(results)
    for name, ax in axes.items():
        study = results["studies"][name]
        palette = colors(study["runs"])
        everything = []
        for opt, run in study["runs"].items():
            h = run["history"]
            steps = np.arange(1, len(h["train_loss"]) + 1)
            label = run["label"] + (" (diverged)" if run["diverged"] else "")
            ax.plot(steps, finite(h["train_loss"]), color=palette[opt], lw=1.4, label=label)
            ax.plot(steps, finite(h["test_loss"]), color=palette[opt], lw=1.0, ls="--")
            everything += h["train_loss"] + h["test_loss"]
        if _spans_decades(everything):
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(f"{study['title']}\nsolid: train, dashed: test")
        ax.set_xlabel("step (full-batch updates)")
        ax.set_ylabel("mean squared error")
        ax.legend(loc="best")
    _save(fig, path)


def fits(results, data, path):
    """The training points, the truth and each optimizer's fitted curve."""
    fig, axes = _panels(results)
    for name, ax in axes.items():
        study, d = results["studies"][name], data[name]
        palette = colors(study["runs"])
        ax.scatter(d.x_train[:, 0], d.y_train[:, 0], s=12, color="0.35", label="training points", zorder=3)
        grid = np.linspace(d.x_train.min(), d.x_train.max(), 400)[:, None]
        for opt, run in study["runs"].items():
            with np.errstate(all="ignore"):
                pred = d.features(grid) @ np.asarray(run["w"])[:, None] + run["b"]
            ax.plot(grid[:, 0], finite(pred[:, 0]), color=palette[opt], lw=1.4, label=run["label"])
        truth = 2 * grid[:, 0] if name == "line" else np.sin(np.pi * grid[:, 0])
        ax.plot(grid[:, 0], truth, color="k", ls=":", lw=1.5, label="truth")
        low, high = d.y_train.min(), d.y_train.max()
        ax.set_ylim(low - 0.3 * (high - low), high + 0.3 * (high - low))
        ax.set_title(study["title"])
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.legend(loc="best", ncol=2)
    _save(fig, path)


def weight_norms(results, path):
    """‖w‖₂ of the weights (bias excluded) against the step."""
    fig, axes = _panels(results)
    for name, ax in axes.items():
        study = results["studies"][name]
        palette = colors(study["runs"])
        for opt, run in study["runs"].items():
            norms = run["history"]["weight_norm"]
            ax.plot(np.arange(1, len(norms) + 1), finite(norms), color=palette[opt], lw=1.4, label=run["label"])
        ax.set_xscale("log")
        ax.set_title(study["title"])
        ax.set_xlabel("step (full-batch updates)")
        ax.set_ylabel("weight norm ‖w‖₂")
        ax.legend(loc="best")
    _save(fig, path)


def final_test_loss(results, path):
    """Final test MSE per optimizer, one bar chart per study."""
    fig, axes = _panels(results, height=3.0)
    for name, ax in axes.items():
        study = results["studies"][name]
        palette = colors(study["runs"])
        labels = [run["label"] + (f"\nwd={run['weight_decay']:g}" if run["decay"] else "")
                  for run in study["runs"].values()]
        values = finite([run["history"]["test_loss"][-1] if run["history"]["test_loss"] and not run["diverged"]
                         else np.nan for run in study["runs"].values()])
        y = np.arange(len(labels))
        ax.barh(y, np.nan_to_num(values), color=[palette[o] for o in study["runs"]])
        for yi, v in zip(y, values):
            ax.text(0 if np.isnan(v) else v, yi, " diverged" if np.isnan(v) else f" {v:.3g}", va="center",
                    fontsize=8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        ax.set_xlim(0, top * 1.25 or 1.0)
        ax.set_xlabel("final test MSE (lower is better)")
        ax.set_title(study["title"])
    _save(fig, path)


def coefficients(results, study_name, path):
    """Each optimizer's fitted coefficient per polynomial degree."""
    study = results["studies"][study_name]
    palette = colors(study["runs"])
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for opt, run in study["runs"].items():
        w = finite(run["w"])
        ax.plot(np.arange(1, w.size + 1), w, "o-", ms=3, lw=1, color=palette[opt], label=run["label"])
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("degree k (coefficient of xᵏ)")
    ax.set_ylabel("fitted coefficient")
    ax.set_title(f"{study['title']}: fitted coefficients")
    ax.legend(loc="best", ncol=2)
    _save(fig, path)


# Figures of `adamkit run` and `adamkit compare`, read from the flat records: keyed by
# task and metric, one color per variant, one line style per split.

SPLIT_STYLES = {"train": "-", "val": ":", "test": "--", "model": "-"}


def metric_panels(records, panels, path, title):
    """One panel per ``(metric, splits)``: the mean over seeds per variant and split, with a
    ±1 std band when there are several seeds. Non-finite points (a diverged run) are left out."""
    from adamkit.lab import results

    varying = results.varying(records)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    keys = list(dict.fromkeys(results.variant(r) for r in records))
    palette = colors(keys)
    for ax, (metric, splits) in zip(axes[0], panels):
        everything = []
        for split in splits:
            for key, (steps, values) in results.curves(records, split, metric).items():
                values = finite(values)
                if not np.isfinite(values).any():
                    continue
                with warnings.catch_warnings():  # a step where every seed has stopped is NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
                name = results.label(key, varying) + ("" if len(splits) == 1 else f" ({split})")
                ax.plot(steps, mean, color=palette[key], ls=SPLIT_STYLES.get(split, "-"), lw=1.3, label=name)
                if len(values) > 1:
                    ax.fill_between(steps, mean - std, mean + std, color=palette[key], alpha=0.18, lw=0)
                everything += list(mean)
        if _spans_decades(everything):
            ax.set_yscale("log")
        ax.set_title(f"{metric} ({', '.join(splits)})")
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        if ax.lines:
            ax.legend(loc="best")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def final_bars(summary, path):
    """Final test value per variant: mean with ±1 std error bars; diverged runs named."""
    variants = summary["variants"]
    names = list(variants)
    means = finite([v["test_mean"] if v["test_mean"] is not None else np.nan for v in variants.values()])
    stds = np.nan_to_num(finite([v["test_std"] if v["test_std"] is not None else np.nan
                                 for v in variants.values()]))
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))
    palette = colors(names)
    ax.barh(y, np.nan_to_num(means), xerr=stds, color=[palette[n] for n in names], capsize=3)
    for yi, name, m, sd in zip(y, names, means, stds):
        v = variants[name]
        note = f" {m:.4g}" if np.isfinite(m) else " diverged"
        if v["diverged"] and np.isfinite(m):
            note += f" ({v['diverged']}/{v['seeds']} diverged)"
        ax.text(0 if np.isnan(m) else m + sd, yi, note, va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    top = np.nanmax(means + stds) if np.isfinite(means).any() else 1.0
    ax.set_xlim(0, top * 1.3 or 1.0)
    better = "higher" if summary["higher_is_better"] else "lower"
    ax.set_xlabel(f"final test {summary['primary']} ({better} is better), mean ± std over seeds")
    ax.set_title(f"{summary['task']}: final test {summary['primary']}")
    _save(fig, path)
