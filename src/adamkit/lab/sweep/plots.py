"""lr × weight-decay heatmaps, one per optimizer side by side (the AdamW paper's Figure 2)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _edges(values):
    """Cell boundaries on a log axis: geometric midpoints, half a step beyond each end."""
    logs = np.log10(values)
    step = np.diff(logs).mean() if len(logs) > 1 else 1.0
    mids = (logs[1:] + logs[:-1]) / 2
    return 10 ** np.concatenate([[logs[0] - step / 2], mids, [logs[-1] + step / 2]])


def heatmaps(summary, means, path, labels=None):
    """``means``: {optimizer: array (lrs, wds)} of the selection metric (NaN: diverged).

    One colour scale for every panel, log axes, each cell's value written in it, the best
    cell outlined, diverged cells hatched grey, and the too-much-decay edge drawn as dots.
    """
    names = list(means)
    lrs, wds = np.array(summary["lrs"]), np.array(summary["weight_decays"])
    finite = np.concatenate([m[np.isfinite(m)] for m in means.values()] or [np.array([])])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 1)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    cmap = plt.get_cmap("viridis" if summary["higher_is_better"] else "viridis_r").with_extremes(bad="0.85")
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names) + 1.2, 4.2), squeeze=False,
                             constrained_layout=True)
    xe, ye = _edges(wds), _edges(lrs)
    for ax, name in zip(axes[0], names):
        m = np.ma.masked_invalid(means[name])
        mesh = ax.pcolormesh(xe, ye, m, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
        for i in range(len(lrs)):
            for j in range(len(wds)):
                x0, x1, y0, y1 = xe[j], xe[j + 1], ye[i], ye[i + 1]
                cx, cy = np.sqrt(x0 * x1), np.sqrt(y0 * y1)
                v = means[name][i, j]
                if np.isfinite(v):
                    r, g, b, _ = cmap((v - vmin) / (vmax - vmin))
                    ax.text(cx, cy, f"{v:.3g}", ha="center", va="center", fontsize=7,
                            color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
                else:
                    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, hatch="xx", ec="0.5", lw=0))
                    ax.text(cx, cy, "diverged", ha="center", va="center", fontsize=6, color="0.3")
        s = summary["optimizers"][name]
        if s["best"]:
            i, j = list(lrs).index(s["best"]["lr"]), list(wds).index(s["best"]["weight_decay"])
            ax.add_patch(Rectangle((xe[j], ye[i]), xe[j + 1] - xe[j], ye[i + 1] - ye[i], fill=False, ec="red", lw=2.2))
        edge = [(r["edge_wd"], r["lr"]) for r in s["rows"] if r["edge_wd"] is not None]
        if edge:
            ax.plot(*zip(*edge), "o:", color="red", ms=3, lw=1, label="too-much-decay edge")
            ax.legend(loc="lower left", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel("weight decay")
        ax.set_ylabel("learning rate")
        slope = s["edge_slope"]
        text = f"edge slope {slope['mean']:+.2f}" if slope["mean"] is not None and np.isfinite(slope["mean"]) \
            else "no edge slope"
        ax.set_title(f"{(labels or {}).get(name, name)}\n{text}", fontsize=10)
        ax.grid(False)
    fig.colorbar(mesh, ax=axes[0].tolist(), label=f"{summary['selection']} {summary['metric']} "
                 f"(mean over {summary['seeds']} seed{'s' if summary['seeds'] > 1 else ''})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
