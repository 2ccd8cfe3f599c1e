"""The lab's tasks, run(), and the run / compare / tasks commands: quick budgets only."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adamkit.lab import cli, studies
from adamkit.lab.output import atomic_directory
from adamkit.lab.run import FIELDS, RunConfig, run
from adamkit.lab.tasks import TASKS
from adamkit.lab.tasks.text import corpus, unigram_bits

ADAMKIT = [sys.executable, "-m", "adamkit"]


def _final(result, split, metric):
    return result.final[split][metric]


def _beats_baseline(task):
    """Each task's trivial baseline, and whether the quick run beats it."""
    result = run(RunConfig(task, quick=True))
    assert not result.diverged
    if task == "digits":
        return _final(result, "test", "accuracy"), 0.8
    if task == "mnist1d":
        return 1 - _final(result, "test", "error"), 0.3  # chance is 0.1 accuracy
    if task == "cancer":
        return _final(result, "test", "accuracy"), 0.9
    if task == "text":
        return -_final(result, "test", "bits_per_char"), -unigram_bits(corpus(None))
    if task == "recsys":
        return -_final(result, "test", "rmse"), -_final(result, "test", "mean_baseline_rmse")
    if task == "cartpole":
        return _final(result, "val", "return"), 40.0  # a random policy averages about 22
    study = studies.STUDIES[task](seed=0)  # line, poly: predicting the training mean
    return -_final(result, "test", "mse"), -float(((study.y_test - study.y_train.mean()) ** 2).mean())


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_in_quick_mode_beats_its_trivial_baseline(task):
    score, baseline = _beats_baseline(task)
    assert score > baseline, (task, score, baseline)


def test_the_same_seed_gives_the_same_numbers_and_another_seed_others():
    a, b = (run(RunConfig("mnist1d", "adamw", steps=60)) for _ in range(2))
    c = run(RunConfig("mnist1d", "adamw", steps=60, seed=1))
    assert [r["value"] for r in a.records] == [r["value"] for r in b.records]
    assert [r["value"] for r in a.records] != [r["value"] for r in c.records]


def test_records_are_flat_rows_and_on_eval_sees_each_evaluation():
    seen = []
    result = run(RunConfig("cancer", "adam-l1", steps=40), on_eval=lambda step, rows: seen.append((step, rows)))
    assert all(tuple(r) == FIELDS for r in result.records)
    assert [r for _, rows in seen for r in rows] == result.records
    assert seen[-1][0] == 40 and result.records[0]["decay"] == "l1" and result.records[0]["init"] == "zeros"
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))
    assert summary["settings"]["threads"] == 1 and summary["settings"]["torch"]


def test_on_eval_may_stop_a_run():
    class Pruned(Exception):
        pass

    def prune(step, rows):
        raise Pruned(step)

    with pytest.raises(Pruned):
        run(RunConfig("cancer", steps=40), on_eval=prune)


def test_a_huge_lr_is_recorded_as_diverged(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "mnist1d", "--optimizer", "sgd", "--lr", "1e30", "--steps", "50", "--out", str(out)]) == 0
    assert "diverged at step" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary["diverged"] is True and summary["diverged_at"] <= 50
    assert (out / "curves.png").stat().st_size > 10_000


def test_zero_init_gives_one_distinct_hidden_unit():
    zeros = run(RunConfig("mnist1d", "adam", init="zeros", steps=30))
    he = run(RunConfig("mnist1d", "adam", init="he", steps=30))
    assert zeros.curve("model", "distinct_units")[1][-1] == 1
    assert he.curve("model", "distinct_units")[1][-1] == he.settings["hidden_units"] == 100


def test_the_run_command_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", "cancer", "--optimizer", "adam-l2", "--schedule", "warmup_cosine", "--quick",
                     "--quiet", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.csv", "summary.json", "curves.png"}
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FIELDS and {r["schedule"] for r in rows} == {"warmup_cosine"}
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["decay"] == "l2" and config["resolved"]["steps"] == TASKS["cancer"].quick_budget
    assert os.stat(out).st_mode & 0o777 == 0o777 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_compare_reports_mean_std_and_the_noise_test(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "mnist1d", "--optimizers", "sgd,adamw", "--seeds", "3", "--steps", "60",
                     "--jobs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {"sgd", "adamw"}
    assert all(v["seeds"] == 3 and len(v["test"]) == 3 and v["test_std"] > 0 for v in summary["variants"].values())
    assert len(summary["pairs"]) == 1 and 0 <= summary["pairs"][0]["p"] <= 1
    assert " ± " in report and "Welch" in report and report.count("data:image/png;base64,") == 2
    assert summary["findings"][0].startswith("Best final test error") and summary["findings"][0] in printed
    assert any("seed noise" in f for f in summary["findings"])
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({(r["optimizer"], r["seed"]) for r in rows}) == 6
    here = run(RunConfig("mnist1d", "adamw", steps=60, seed=2))  # 1 thread: the same bits in any process
    assert [float(r["value"]) for r in rows if r["optimizer"] == "adamw" and r["seed"] == "2"] == \
        [r["value"] for r in here.records]


def test_compare_says_when_seeds_change_nothing(tmp_path):
    out = tmp_path / "cmp"  # full batch from zeros: every seed trains the same model
    assert cli.main(["compare", "cancer", "--optimizers", "adam,adam-l1", "--seeds", "2", "--steps", "30",
                     "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    findings = json.loads((out / "summary.json").read_text())["findings"]
    assert any("the seeds measure no noise" in f for f in findings)


def test_compare_inits_shows_the_symmetric_units(tmp_path):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "mnist1d", "--optimizers", "adam", "--inits", "zeros,he", "--seeds", "2",
                     "--steps", "40", "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"]["adam, init=zeros"]["distinct_units"] == [1]
    assert summary["variants"]["adam, init=he_normal"]["distinct_units"] == [100]
    assert any("1 distinct unit of 100" in f for f in summary["findings"])


def test_bf16_rounding_modes_are_variants_with_their_state_memory():
    results = {}
    for rounding in ("nearest", "kahan", "stochastic"):
        config = RunConfig("cancer", quick=True, dtype="bf16", rounding=rounding)
        results[rounding] = run(config)
        assert {r["precision"] for r in results[rounding].records} == {config.precision}
    fp32 = run(RunConfig("cancer", quick=True))
    assert fp32.records[0]["precision"] == "fp32"
    bytes_per_param = {k: r.settings["state_bytes_per_param"] for k, r in results.items()}
    assert fp32.settings["state_bytes_per_param"] >= 8  # fp32 exp_avg and exp_avg_sq
    assert bytes_per_param["kahan"] - bytes_per_param["nearest"] == pytest.approx(2)  # bf16 kahan_comp
    with pytest.raises(ValueError, match="bf16"):
        RunConfig("cancer", rounding="kahan").validate()


def test_the_tasks_command_lists_every_task(capsys):
    assert cli.main(["tasks"]) == 0
    listing = capsys.readouterr().out
    for name, task in TASKS.items():
        assert f"{name}: " in listing and f"--quick {task.quick_budget}" in listing
    assert "generated" in listing.split("recsys:")[1].split("\n\n")[0]


@pytest.fixture
def files(tmp_path):
    made = tmp_path / "data"
    made.mkdir()
    (made / "empty.txt").write_text("")
    (made / "latin1.txt").write_bytes(("ok\n" * 1500).encode() + "caf\xe9\n".encode("latin-1"))
    (made / "ratings.csv").write_text("user,item,rating\n" + "".join(f"u{k},i{k % 7},{k % 5}\n" for k in range(30))
                                      + "u1,i2,great\n")
    (made / "short.csv").write_text("u,i,1\nu,j\n")
    (made / "latin1.csv").write_bytes(b"u,i,1\nv,j,2\nw,caf\xe9,3\n")
    return made


BAD = [
    (["run", "chess"], "unknown task 'chess'"),
    (["run", "cancer", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["run", "cancer", "--init", "ones"], "unknown init 'ones'"),
    (["run", "cancer", "--schedule", "sometimes"], "unknown schedule 'sometimes'"),
    (["run", "cancer", "--decay", "l3"], "unknown decay 'l3'"),
    (["run", "cancer", "--lr", "0"], "lr must be a finite number > 0"),
    (["run", "cancer", "--lr", "nan"], "lr must be a finite number > 0"),
    (["run", "cancer", "--lr", "inf"], "lr must be a finite number > 0"),
    (["run", "cancer", "--weight-decay", "-1"], "weight decay must be a finite number >= 0"),
    (["run", "cancer", "--seed", "-1"], "seed must be an integer >= 0"),
    (["run", "cancer", "--steps", "0"], "steps must be an integer >= 1"),
    (["run", "cancer", "--model", "cnn"], "unknown model for task 'cancer' 'cnn'"),
    (["run", "cancer", "--data", "x.csv"], "task 'cancer' takes no --data file"),
    (["run", "mnist1d", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "text", "--data", "{data}/missing.txt"], "no such file"),
    (["run", "text", "--data", "{data}/empty.txt"], "0 characters"),
    (["run", "text", "--data", "{data}/latin1.txt"], "latin1.txt', line 1501: not UTF-8 text"),
    (["run", "recsys", "--data", "{data}/ratings.csv"], "ratings.csv', line 32: rating 'great' is not a number"),
    (["run", "recsys", "--data", "{data}/short.csv"], "short.csv', line 2: expected 3 columns"),
    (["run", "recsys", "--data", "{data}/empty.txt"], "0 ratings"),
    (["run", "recsys", "--data", "{data}/latin1.csv"], "latin1.csv', line 3: not UTF-8 text"),
    (["run", "recsys", "--data", "{data}"], "is a directory, not a file"),
    (["compare", "cancer", "--seeds", "0"], "seeds must be an integer >= 1"),
    (["compare", "cancer", "--optimizers", "adam,lion"], "unknown optimizer 'lion'"),
    (["compare", "cancer", "--inits", "zeros,ones"], "unknown init 'ones'"),
    (["compare", "cancer", "--schedules", "cosine,never"], "unknown schedule 'never'"),
    (["compare", "cancer", "--jobs", "0"], "jobs must be an integer >= 1"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, files, capsys, args, message):
    out = tmp_path / "out"
    args = [a.replace("{data}", str(files)) for a in args]
    assert cli.main([*args, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_user_data_trains(tmp_path):
    text = tmp_path / "poem.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    result = run(RunConfig("text", data=str(text), steps=30))
    assert _final(result, "test", "bits_per_char") < unigram_bits(text.read_text())
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("".join(f"user{u},item{i},{(u * i) % 5 + 1}\n" for u in range(40) for i in range(25)
                               if (u + i) % 3))
    result = run(RunConfig("recsys", data=str(ratings), steps=100))
    assert _final(result, "test", "rmse") < _final(result, "test", "mean_baseline_rmse")


def test_default_names_stay_unique(tmp_path):
    paths = []
    for _ in range(3):
        target = atomic_directory(tmp_path / "run-x", unique=True)
        with target as tmp:
            (tmp / "a").write_text("x")
        paths.append(target.path.name)
    assert paths == ["run-x", "run-x-2", "run-x-3"]


def test_ctrl_c_leaves_nothing(tmp_path, monkeypatch, capsys):
    import adamkit.lab.run as run_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run", interrupted)
    assert cli.main(["run", "cancer", "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip() == "adamkit: interrupted; no results were written"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_and_an_ascii_locale(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([*ADAMKIT, "demo", "--steps", "5", "--quiet", "--out", str(tmp_path / "demo")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "×" in (tmp_path / "demo" / "summary.json").read_text(encoding="utf-8")
    proc = subprocess.Popen([*ADAMKIT, "run", "mnist1d", "--steps", "100000", "--quiet", "--out",
                             str(tmp_path / "long")], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".long.tmp-*/metrics.csv")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert "terminated" in proc.stderr.read()
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["demo"]


def test_compare_schedules_with_one_seed_makes_no_noise_claim(tmp_path):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "mnist1d", "--optimizers", "adam-l2,adamw", "--schedules", "constant,wsd",
                     "--seeds", "1", "--steps", "30", "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {f"{o}, schedule={s}" for o in ("adam-l2", "adamw") for s in ("constant", "wsd")}
    assert all(p["beyond_noise"] is None for p in summary["pairs"])
    assert any("too few seeds" in f for f in summary["findings"])
    with open(out / "metrics.csv", newline="") as f:
        lrs = [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "lr" and r["schedule"] == "wsd"]
    assert lrs[-1] < lrs[len(lrs) // 2]  # the decay phase of warmup-stable-decay
