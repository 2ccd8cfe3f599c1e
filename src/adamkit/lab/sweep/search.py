"""``--search tpe``: Optuna's TPE over the same lr and weight-decay ranges, one study per optimizer.

Each trial trains every seed at one (lr, weight decay) and scores their mean on the
selection split (a diverged seed makes the trial the worst). Workers share a study
through the storage; a trial whose worker died goes stale by heartbeat and is failed,
and a rerun continues until the study holds ``trials`` complete trials. Workers running
at once may finish a few more than asked: the report reads the first ``trials``.
"""

import math
import multiprocessing
import os
import time
import warnings
from pathlib import Path

from adamkit.lab.sweep import storage as st
from adamkit.lab.sweep.grid import Cell


def study_name(spec, optimizer):
    return f"{spec.study_name}-tpe-{optimizer}"


def _objective(spec, optimizer, train, out, higher):
    def objective(trial):
        wds = spec.weight_decays
        lr = float(f"{trial.suggest_float('lr', min(spec.lrs), max(spec.lrs), log=True):.6g}")
        wd = float(f"{trial.suggest_float('weight_decay', min(wds), max(wds), log=True):.6g}")
        seeds, curves, started = [], [], time.perf_counter()
        for seed in range(spec.seeds):
            cell = Cell(optimizer, lr, wd, seed, "tpe")
            run_dir = Path(out) / "runs" / f"{cell.slug}-t{trial.number}"
            o = train(cell, run_dir)
            seeds.append({"seed": seed, "val": o["val"].get(o["metric"]), "test": o["test"].get(o["metric"]),
                          "diverged": bool(o["diverged"]), "reason": o.get("reason"), "run_dir": str(run_dir)})
            curves.append(o.get("curve"))
        vals = [s["val"] for s in seeds]
        trial.set_user_attr("outcome", {"optimizer": optimizer, "metric": o["metric"],
                                        "selection": o.get("selection", "val"), "seeds": seeds,
                                        "seconds": time.perf_counter() - started})
        gone = [s for s in seeds if s["diverged"]]
        settings = {k: v for k, v in (o.get("settings") or {}).items() if k != "seed"}
        st.publish(trial, {"settings": {**settings, "seeds": spec.seeds}, "diverged": bool(gone),
                           "reason": gone[0]["reason"] if gone else None}, curves)
        if any(s["diverged"] or v is None or not math.isfinite(v) for s, v in zip(seeds, vals)):
            return -math.inf if higher else math.inf
        return sum(vals) / len(vals)

    return objective


def _complete(study):
    from optuna.trial import TrialState

    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def _work(url, heartbeat, spec, optimizer, train, out, higher, parent=None):
    """Ask, train, tell until the study holds ``spec.trials`` complete trials. Optuna's
    ``optimize`` would stop this worker when another failed its trial as stale (this one paused
    past three heartbeats); here that trial's result is dropped and the search goes on."""
    import optuna

    storage = st.open_storage(url, heartbeat)
    study = st.open_study(storage, study_name(spec, optimizer), "maximize" if higher else "minimize")
    study.sampler = optuna.samplers.TPESampler(n_startup_trials=min(10, max(1, spec.trials // 3)))
    objective = _objective(spec, optimizer, train, out, higher)
    S = optuna.trial.TrialState
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # this loop is what optimize does with heartbeats, less its stop on a taken-over trial
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        while len(_complete(study)) < spec.trials:
            optuna.storages.fail_stale_trials(study)
            trial = study.ask()
            value, state = None, S.COMPLETE
            with st._Heartbeat(storage, trial._trial_id, heartbeat, parent):
                try:
                    value = objective(trial)
                except BaseException as e:
                    running = storage.get_trial(trial._trial_id).state == S.RUNNING
                    if running or isinstance(e, KeyboardInterrupt):
                        if running:  # failed at once: the next worker need not wait for its heartbeat
                            storage.set_trial_user_attr(trial._trial_id, "error", f"{type(e).__name__}: {e}"[:500])
                            study.tell(trial, state=S.FAIL, skip_if_finished=True)
                        raise
                    state = None  # failed as stale by another worker while this one was paused: dropped
            if state is not None:
                study.tell(trial, value, skip_if_finished=True)  # skipped, too, if failed as stale meanwhile


def _worker(*args):
    try:
        _work(*args)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def search(storage, spec, train, out, *, jobs=1, heartbeat=st.DEFAULT_HEARTBEAT, higher_is_better=False,
           progress=None):
    """Run each optimizer's study to ``spec.trials`` complete trials; returns
    ``{optimizer: [first trials complete trials]}``."""
    found, jobs = {}, min(jobs, spec.trials)
    for optimizer in spec.optimizers:
        args = (storage.url, heartbeat, spec, optimizer, train, str(out), higher_is_better)
        if jobs <= 1:
            _work(*args)
        else:
            ctx = multiprocessing.get_context("spawn")
            procs = [ctx.Process(target=_worker, args=(*args, os.getpid()), daemon=True) for _ in range(jobs)]
            for p in procs:
                p.start()
            try:
                for p in procs:
                    p.join()
            finally:
                for p in procs:
                    p.terminate()
            if any(p.exitcode for p in procs):
                raise RuntimeError(f"a search worker for {optimizer} failed (exit code "
                                   f"{next(p.exitcode for p in procs if p.exitcode)}); rerun to continue")
        study = st.open_study(storage, study_name(spec, optimizer))
        found[optimizer] = _complete(study)[:spec.trials]
        if progress:
            progress(sum(len(v) for v in found.values()), spec.trials * len(spec.optimizers))
    return found


def rows(found, decay_of):
    """One row per (trial, seed), in sweep.csv's columns."""
    out = []
    for optimizer, trials in found.items():
        for t in trials:
            a = t.user_attrs["outcome"]
            for s in a["seeds"]:
                out.append({"role": "tpe", "optimizer": optimizer, "lr": float(f"{t.params['lr']:.6g}"),
                            "weight_decay": float(f"{t.params['weight_decay']:.6g}"), "decay": decay_of(optimizer),
                            "seed": s["seed"], "metric": a["metric"], "split": a["selection"], "val": s["val"],
                            "test": s["test"], "status": "diverged" if s["diverged"] else "ok",
                            "seconds": round(a["seconds"] / len(a["seeds"]), 3), "run_dir": s["run_dir"],
                            "reason": s.get("reason") if s["diverged"] else None})
    return out


def summarize(found, spec, higher):
    """Per optimizer: every trial's (lr, wd, mean val, mean test) and the best one."""
    out = {"task": spec.task, "search": "tpe", "trials": spec.trials, "seeds": spec.seeds,
           "higher_is_better": higher, "lrs": [min(spec.lrs), max(spec.lrs)],
           "weight_decays": [min(spec.weight_decays), max(spec.weight_decays)], "optimizers": {}}
    for optimizer, trials in found.items():
        points = []
        for t in trials:
            a = t.user_attrs["outcome"]
            ok = math.isfinite(t.value)
            mean = (lambda k, a=a, ok=ok: sum(s[k] for s in a["seeds"]) / len(a["seeds"]) if ok else None)
            points.append({"lr": float(f"{t.params['lr']:.6g}"),
                           "weight_decay": float(f"{t.params['weight_decay']:.6g}"),
                           "val": mean("val"), "test": mean("test"), "trial": t.number})
            out["metric"], out["selection"] = a["metric"], a["selection"]
        finite = [p for p in points if p["val"] is not None]
        best = (max if higher else min)(finite, key=lambda p: p["val"]) if finite else None
        gone = [{"lr": float(f"{t.params['lr']:.6g}"), "weight_decay": float(f"{t.params['weight_decay']:.6g}"),
                 "seed": sd["seed"], "reason": sd.get("reason")}
                for t in trials for sd in t.user_attrs["outcome"]["seeds"] if sd["diverged"]]
        out["optimizers"][optimizer] = {"points": points, "best": best,
                                        "diverged": len(points) - len(finite), "diverged_runs": gone}
    return out


def plot(summary, path, labels):
    """lr × weight decay of every trial, coloured by its value (one scale), best circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["optimizers"])
    vals = [p["val"] for s in summary["optimizers"].values() for p in s["points"] if p["val"] is not None]
    vmin, vmax = (min(vals), max(vals)) if vals else (0, 1)
    cmap = "viridis" if summary["higher_is_better"] else "viridis_r"
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names) + 1.2, 4.2), squeeze=False,
                             constrained_layout=True)
    sc = None
    for ax, name in zip(axes[0], names):
        s = summary["optimizers"][name]
        ok = [p for p in s["points"] if p["val"] is not None]
        bad = [p for p in s["points"] if p["val"] is None]
        sc = ax.scatter([p["weight_decay"] for p in ok], [p["lr"] for p in ok], c=[p["val"] for p in ok],
                        cmap=cmap, vmin=vmin, vmax=vmax, s=40, edgecolors="k", linewidths=0.4)
        if bad:
            ax.scatter([p["weight_decay"] for p in bad], [p["lr"] for p in bad], marker="x", color="0.5",
                       label="diverged")
            ax.legend(loc="lower left", fontsize=7)
        if s["best"]:
            ax.scatter([s["best"]["weight_decay"]], [s["best"]["lr"]], s=220, facecolors="none", edgecolors="red",
                       linewidths=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(summary["weight_decays"][0] / 1.5, summary["weight_decays"][1] * 1.5)
        ax.set_ylim(summary["lrs"][0] / 1.5, summary["lrs"][1] * 1.5)
        ax.set_xlabel("weight decay")
        ax.set_ylabel("learning rate")
        ax.set_title(labels.get(name, name), fontsize=10)
    if sc is not None:
        fig.colorbar(sc, ax=axes[0].tolist(), label=f"{summary.get('selection', 'val')} {summary.get('metric', '')}")
    fig.savefig(path, dpi=110)
    plt.close(fig)

