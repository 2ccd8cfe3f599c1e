"""GPU evidence in one command: the CUDA tests, every kernel against a float64 reference, and
the step table on GPT-2-medium shapes, appended to benchmarks/RESULTS.md.

    PYTHONPATH=src python benchmarks/gpu_check.py                   # on a CUDA machine, under 8 minutes
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --results /tmp/r.md   # dry run, tiny shapes

On a lent machine that works on a copy of the repo and returns only $OUT, with torch and Triton
already installed and no package index (so no scripts/setup.sh), append to a copy that comes back:

    set -o pipefail; cp benchmarks/RESULTS.md $OUT/ && PYTHONUNBUFFERED=1 PYTHONPATH=src \
        python3 benchmarks/gpu_check.py --results $OUT/RESULTS.md 2>&1 | tee $OUT/gpu_check.log

Parts, each with its own time budget so that one slow or broken part leaves the others theirs:

1. tests: pytest, in a subprocess with a time limit, on the tests that name CUDA or Triton
   (``-k "cuda or triton"`` over the test files that mention either).
2. correctness: each kernel that runs on the device (reference, foreach, fused, triton; the C
   kernel too on the CPU), fp32 and bf16 params, every decay mode, every rounding mode (bf16),
   AMSGrad off and on, against ``impl="reference"`` in float64. Each step both start from the
   kernel's own params and state (the oracle is re-seeded from them), so the error is one
   step's, in units of the dtype's eps relative to each value (or its tensor's RMS where the
   value is near zero); a Kahan param is compared as param + compensation. Stochastic rounding,
   which stays within an ulp even when biased, must also match the reference kernel in bf16
   bit for bit (99.9% of elements: they share one random stream).
3. timing: the step table of torch's for-loop, foreach, fused and ``torch.compile``d AdamW and
   every adamkit implementation (decoupled decay), with CUDA events, median of rounds whose
   order rotates, and the floor: the bytes one step moves over the measured copy bandwidth.
4. the results, with the device's name, versions and UTC date, appended as a new section to
   ``--results`` (on CUDA: benchmarks/RESULTS.md by default) and printed.

Exit status: 0 all ran and passed; 1 a correctness row or a test failed; 3 no CUDA device
(nothing run; pass ``--device cpu`` for the dry run); 4 nothing failed but a part crashed or
ran out of time before its rows were all checked.
"""

import argparse
import datetime
import importlib.util
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
from step import DTYPES, MODELS, REFERENCE, Timer, contenders, machine, make_params, traffic

import adamkit.torch as ak
from adamkit import rules
from adamkit.torch import kernels

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = 3
INCOMPLETE = 4
# One step's error, in eps of the dtype, that a row may reach. fp32: kernels order the same
# arithmetic differently (a few ulps). bf16: rounding to nearest costs half an ulp, stochastic
# rounding up to one, and the foreach kernel does its math in bf16 (a few ulps of the operands).
TOLERANCE = {torch.float32: 16.0, torch.bfloat16: 4.0}
CHECK_SHAPES = {  # odd sizes, a scalar, an empty tensor, several Triton blocks, a million elements
    "cuda": [(7, 3), (1,), (), (0,), (5000,), (257, 129), (3, 1, 4), (65537,), (1024, 1024)],
    "cpu": [(7, 3), (1,), (), (0,), (5000,), (33, 17)],
}


class Budget:
    """A part's deadline."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()


# --- part 1: the test suite's CUDA and Triton tests ----------------------------------------------------------

def cuda_test_files():
    """Test files that mention CUDA or Triton: the only ones whose tests can take a GPU path."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if any(word in p.read_text() for word in ("cuda", "triton")))


def progress_counts(stdout):
    """Counts from pytest's -q progress lines (``..F.s  [ 40%]``): what a run killed at its time
    limit, which writes no JUnit XML, had done so far."""
    marks = "".join(re.sub(r"\s*\[\s*\d+%\]$", "", line) for line in stdout.splitlines()
                    if re.fullmatch(r"[.FEsxX]+(\s*\[\s*\d+%\])?", line.strip()))
    return dict(passed=marks.count(".") + marks.count("X"), failed=marks.count("F"), errors=marks.count("E"),
                skipped=marks.count("s") + marks.count("x"))


def run_tests(budget, expression):
    """pytest on those tests in a subprocess, killed at the budget; counts from its JUnit XML."""
    files = cuda_test_files()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", expression,
               f"--junitxml={xml}", *files]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                        os.environ.get("PYTHONPATH")])))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=max(budget.left(), 1))
            stdout, timed_out = proc.stdout, False
        except subprocess.TimeoutExpired as e:
            stdout, timed_out = e.stdout or "", True
            stdout = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
        counts, failing = progress_counts(stdout), []
        if xml.exists():
            counts = dict(passed=0, failed=0, errors=0, skipped=0)
            for case in ET.parse(xml).getroot().iter("testcase"):
                outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "")
                key = {"failure": "failed", "error": "errors", "skipped": "skipped"}.get(outcome, "passed")
                counts[key] += 1
                if key in ("failed", "errors"):
                    failing.append(f"{case.get('classname')}::{case.get('name')}")
    return dict(files=files, expression=expression, seconds=time.monotonic() - t0, timed_out=timed_out,
                failing=failing, tail=stdout[-2000:], **counts)


# --- part 2: every kernel against the float64 reference --------------------------------------------------------

def impls_on(device):
    """The implementations that run on ``device`` here, the reference first."""
    return [name for name, k in kernels.KERNELS.items() if k.runs_on(device.type) and k.available()]


def cases(device):
    for dtype, roundings in ((torch.float32, ["nearest"]), (torch.bfloat16, ["nearest", "kahan", "stochastic"])):
        for rounding in roundings:
            for decay in rules.DECAY_MODES:
                for amsgrad in (False, True):
                    for impl in impls_on(device):
                        if rounding in kernels.KERNELS[impl].roundings:
                            yield impl, dtype, rounding, decay, amsgrad


def error(got, want, eps):
    """Max of |got - want| in eps of each wanted value, or of its tensor's RMS where that is larger
    (a value near zero is the difference of larger terms, whose rounding it carries)."""
    if want.numel() == 0:
        return 0.0
    got, want = got.double(), want.double()
    floor = want.pow(2).mean().sqrt()
    return ((got - want).abs() / (eps * torch.maximum(want.abs(), floor).clamp_min(1e-30))).max().item()


def check(impl, dtype, rounding, decay, amsgrad, device, steps, seed):
    """Worst one-step error over ``steps`` steps of fresh random grads: (error, where)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    shapes = CHECK_SHAPES.get(device.type, CHECK_SHAPES["cpu"])
    params = [torch.randn(s, generator=gen, device=device).to(dtype).requires_grad_() for s in shapes]
    oracle_params = [p.detach().double().requires_grad_() for p in params]
    kw = dict(lr=1e-2, weight_decay=0.1, decay=decay, amsgrad=amsgrad)
    opt = ak.AdamW(params, impl=impl, rounding=rounding, rounding_seed=seed, **kw)
    oracle = ak.AdamW(oracle_params, impl="reference", **kw)
    # Stochastic rounding stays within an ulp of the oracle even when biased, which no
    # one-step error shows; but every kernel draws from one stream, so the reference kernel in
    # the same dtype, from the same state, must round the same way bit for bit (but where a
    # last-bit fp32 difference crosses a threshold).
    twin_params = [p.detach().clone().requires_grad_() for p in params] if rounding == "stochastic" else []
    twin = ak.AdamW(twin_params, impl="reference", rounding=rounding, rounding_seed=seed, **kw) if twin_params \
        else None
    eps, worst, same, total = torch.finfo(dtype).eps, (0.0, ""), 0, 0
    for step in range(steps):
        with torch.no_grad():
            for p, q in zip(params, oracle_params):
                # Grads of magnitudes from 1e-4 to 1: eps and the moments' scale both matter.
                scale = 10 ** -(4 * torch.rand((), generator=gen, device=device).item())
                p.grad = (torch.randn(p.shape, generator=gen, device=device) * scale).to(dtype)
                q.grad = p.grad.double()
                q.copy_(value(p, opt.state.get(p, {})))  # the oracle starts from the kernel's values
                for key, t in opt.state.get(p, {}).items():
                    if key != "kahan_comp":
                        oracle.state[q][key].copy_(t)
            for p, t in zip(params, twin_params):
                t.copy_(p)
                t.grad = p.grad.clone()
                for key, v in opt.state.get(p, {}).items():
                    twin.state[t][key].copy_(v)
        opt.step()
        oracle.step()
        if twin:
            twin.step()
            same += sum((p == t).sum().item() for p, t in zip(params, twin_params))
            total += sum(p.numel() for p in params)
        for i, (p, q) in enumerate(zip(params, oracle_params)):
            found = [("param", error(value(p, opt.state[p]), q.detach(), eps))]
            for key, want in oracle.state[q].items():
                got = opt.state[p][key]
                found.append((key, 0.0 if key == "step" and got.item() == want.item() else
                              math.inf if key == "step" else error(got, want, eps)))
            for key, err in found:
                if not err <= worst[0]:  # NaN counts as the worst
                    worst = (err, f"step {step + 1}, tensor {i} {tuple(p.shape)}, {key}")
    if twin and same < 0.999 * total:
        return math.inf, f"stochastic rounding: {same} of {total} params equal to the reference kernel's"
    return worst


def run_correctness(device, steps, budget):
    rows, seed = [], 0
    for impl, dtype, rounding, decay, amsgrad in cases(device):
        row = dict(impl=impl, dtype=dtype, rounding=rounding, decay=decay, amsgrad=amsgrad)
        seed += 1
        if budget.left() <= 0:
            rows.append(dict(row, status="SKIP", error=math.nan, where="out of time"))
            continue
        try:
            err, where = check(impl, dtype, rounding, decay, amsgrad, device, steps, seed)
            status = "pass" if err <= TOLERANCE[dtype] else "FAIL"
        except Exception as e:  # one broken kernel is a failed row, not a stopped check
            err, where, status = math.nan, f"{type(e).__name__}: {e}"[:200], "FAIL"
        rows.append(dict(row, status=status, error=err, where=where))
    return rows


def value(p, state):
    """A param's value: plus its Kahan compensation where it keeps one."""
    comp = state.get("kahan_comp")
    return p.detach().double() + comp.double() if comp is not None else p.detach().double()


# --- part 3: the step table ----------------------------------------------------------------------------------

class Compiled:
    """torch.optim.AdamW with its step compiled by torch.compile (the recipe in torch's docs)."""

    def __init__(self, params, weight_decay):
        self.opt = torch.optim.AdamW(params, weight_decay=weight_decay)
        self.state = self.opt.state
        self.step = torch.compile(self.opt.step)


def copy_bandwidth(nbytes, device, timer, steps):
    """Bytes per second a device copy moves, counting the bytes read and the bytes written."""
    src = torch.ones(max(nbytes // 4, 1), device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds, _ = timer(lambda: dst.copy_(src), steps)
    return 2 * src.numel() * 4 / seconds


def run_timing(device, dtype_name, model, steps, rounds, budget, compile_step):
    """Rows (label, ms/step, GB/s, / torch fused, / floor) and a header line for one dtype."""
    dtype, timer, shapes = DTYPES[dtype_name], Timer(device), MODELS[model]
    n = sum(torch.Size(s).numel() for s in shapes)
    params = make_params(shapes, dtype, device)  # shared: only the optimizer states differ
    entries = contenders(device, dtype, "decoupled")
    if compile_step:
        entries.append(("torch.compile AdamW", lambda ps: Compiled(ps, 0.1)))
    built, skipped = [], []
    for label, factory in entries:  # build each, take its first (compiling, allocating) steps untimed
        if budget.left() < (60 if label.startswith("torch.compile") and device.type == "cuda" else 1):
            skipped.append(label)
            continue
        try:
            opt = factory(params)
            for _ in range(2):
                opt.step()
            built.append((label, opt))
        except Exception as e:
            skipped.append(f"{label} ({type(e).__name__}: {str(e)[:80]})")
    samples = {label: [] for label, _ in built}
    for r in range(rounds if built else 0):
        if r and budget.left() <= 0:
            break
        order = built[r % len(built):] + built[:r % len(built)]  # drift falls on every row alike
        times = {label: timer(opt.step, steps)[0] for label, opt in order}
        for label, seconds in times.items():
            samples[label].append((seconds, seconds / times.get(REFERENCE, math.nan)))
    bandwidth = copy_bandwidth(n * torch.finfo(dtype).bits // 8, device, timer, steps)
    floor = 7 * n * torch.finfo(dtype).bits // 8 / bandwidth  # read p, g, m, v; write p, m, v
    rows = []
    for label, opt in built:
        seconds = statistics.median(s for s, _ in samples[label])
        to_fused = statistics.median(f for _, f in samples[label])
        rows.append((label, seconds * 1e3, traffic(params, opt) / seconds / 1e9, to_fused, seconds / floor))
    fused_ms = next((ms for label, ms, *_ in rows if label == REFERENCE), math.nan)
    rows.append(("floor: bytes / copy bandwidth", floor * 1e3, bandwidth / 1e9, floor * 1e3 / fused_ms, 1.0))
    done = len(samples[built[0][0]]) if built else 0
    header = (f"{model}: {n / 1e6:.1f}M params in {len(shapes)} tensors, {dtype_name}, decoupled decay; "
              f"copy bandwidth {bandwidth / 1e9:.0f} GB/s; median of {done} rounds of {steps} steps")
    return header, rows, skipped


# --- report ---------------------------------------------------------------------------------------------------

def table(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def correctness_summary(rows):
    """One line per (impl, dtype, rounding): rows checked, passed, and the worst error."""
    groups = {}
    for row in rows:
        groups.setdefault((row["impl"], str(row["dtype"]).removeprefix("torch."), row["rounding"]), []).append(row)
    out = []
    for (impl, dtype, rounding), rs in groups.items():
        errors = [r["error"] for r in rs if not math.isnan(r["error"])]
        out.append((impl, dtype, rounding, len(rs), sum(r["status"] == "pass" for r in rs),
                    f"{max(errors):.3g}" if errors else "-"))
    return table(["impl", "params", "rounding", "rows", "pass", "max error (eps)"], out)


def versions():
    out = [f"torch {torch.__version__}"]
    if importlib.util.find_spec("triton"):
        import triton
        out.append(f"triton {triton.__version__}")
    if torch.version.cuda:
        out.append(f"CUDA {torch.version.cuda}")
    return ", ".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu: the dry run on tiny shapes")
    parser.add_argument("--dry-run", action="store_true", help="same as --device cpu")
    parser.add_argument("--results", type=Path, default=None,
                        help="markdown file the section is appended to (default on CUDA: benchmarks/RESULTS.md; "
                             "on the CPU: none)")
    parser.add_argument("--parts", default=None, help="comma-separated parts to run: tests,correctness,timing "
                                                      "(default: all on CUDA; correctness,timing on the CPU)")
    parser.add_argument("--tests-k", default="cuda or triton", help="pytest -k expression for the tests part")
    parser.add_argument("--budgets", default="90,120,180", help="seconds for tests, correctness, timing")
    parser.add_argument("--model", default=None, choices=MODELS, help="default: gpt2-medium on CUDA, tiny on the CPU")
    parser.add_argument("--dtypes", default="fp32,bf16", help="step tables to time")
    parser.add_argument("--steps", type=int, default=None, help="correctness steps per row (default: 10 CUDA, 3 CPU)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="time torch.compile'd AdamW too (default: on CUDA only; on the CPU it needs a C++ "
                             "compiler and minutes)")
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.dry_run else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}); nothing run; "
              f"use --device cpu for the dry run (exit {NO_CUDA})")
        return NO_CUDA
    cuda = device.type == "cuda"
    parts = (args.parts or ("tests,correctness,timing" if cuda else "correctness,timing")).split(",")
    budgets = dict(zip(("tests", "correctness", "timing"), map(float, args.budgets.split(","))))
    results = args.results or (ROOT / "benchmarks" / "RESULTS.md" if cuda else None)
    model = args.model or ("gpt2-medium" if cuda else "tiny")
    if model == "tiny":  # the dry run: a few small tensors, GPT-2-like in kind
        MODELS["tiny"] = [(64, 16), (16,), (16, 48), (48,), (0,), ()]
    steps = args.steps or (10 if cuda else 3)
    now = datetime.datetime.now(datetime.timezone.utc)
    name = machine(device)
    print(f"gpu_check on {name}; {versions()}; {now:%Y-%m-%d %H:%M} UTC", flush=True)

    failed, incomplete, report = False, False, []
    if "tests" in parts:
        print(f"\n== tests (budget {budgets['tests']:.0f} s)", flush=True)
        try:
            t = run_tests(Budget(budgets["tests"]), args.tests_k)
            line = (f"Tests that name CUDA or Triton (`pytest -k \"{t['expression']}\"` over {', '.join(t['files'])}): "
                    f"{t['passed']} passed, {t['failed']} failed, {t['errors']} errors, {t['skipped']} skipped "
                    f"in {t['seconds']:.0f} s" + (" (stopped: out of time; counts so far)" if t["timed_out"] else "")
                    + ".")
            report += [line] + [f"- failing: `{test}`" for test in t["failing"][:20]]
            if len(t["failing"]) > 20:
                report.append(f"- ... and {len(t['failing']) - 20} more")
            failed |= bool(t["failed"] or t["errors"])
            incomplete |= t["timed_out"] or t["passed"] + t["failed"] + t["errors"] + t["skipped"] == 0
            print("\n".join(report) + "\n" + t["tail"][-800:], flush=True)
        except Exception:
            report.append("Tests: the part crashed: " + traceback.format_exc(limit=1).splitlines()[-1])
            incomplete = True
            traceback.print_exc()
        report.append("")

    if "correctness" in parts:
        print(f"\n== correctness (budget {budgets['correctness']:.0f} s)", flush=True)
        try:
            t0 = time.monotonic()
            rows = run_correctness(device, steps, Budget(budgets["correctness"]))
            full = table(["impl", "params", "rounding", "decay", "amsgrad", "max error (eps)", "result", "worst at"],
                         [(r["impl"], str(r["dtype"]).removeprefix("torch."), r["rounding"], r["decay"], r["amsgrad"],
                           f"{r['error']:.3g}", r["status"], r["where"]) for r in rows])
            print("\n".join(full), flush=True)
            bad = [r for r in rows if r["status"] == "FAIL"]
            skipped = [r for r in rows if r["status"] == "SKIP"]
            failed |= bool(bad)
            incomplete |= bool(skipped)
            report += [f"Every kernel against `impl=\"reference\"` in float64 ({steps} steps of fresh random grads, "
                       "each step from the kernel's own params and state; error in eps of the dtype; tolerance "
                       + ", ".join(f"{str(d).removeprefix('torch.')} {tol:g}" for d, tol in TOLERANCE.items())
                       + f"): {len(rows) - len(bad) - len(skipped)} of {len(rows)} rows pass"
                       + (f", {len(bad)} FAIL" if bad else "") + (f", {len(skipped)} not run (out of time)"
                                                                  if skipped else "")
                       + f", in {time.monotonic() - t0:.0f} s.", ""] + correctness_summary(rows)
            report += [f"- FAIL: {r['impl']} {r['dtype']} {r['rounding']} {r['decay']} amsgrad={r['amsgrad']}: "
                       f"{r['error']:.3g} at {r['where']}" for r in bad]
        except Exception:
            report.append("Correctness: the part crashed: " + traceback.format_exc(limit=1).splitlines()[-1])
            incomplete = True
            traceback.print_exc()
        report.append("")

    if "timing" in parts:
        print(f"\n== timing (budget {budgets['timing']:.0f} s)", flush=True)
        budget = Budget(budgets["timing"])
        names = args.dtypes.split(",")
        for i, dtype_name in enumerate(names):
            # Each table gets an equal share of what is left, so the last one is not starved.
            share = Budget(budget.left() / (len(names) - i))
            try:
                header, rows, skipped = run_timing(device, dtype_name, model, 3 if cuda else 2, args.rounds, share,
                                                   compile_step=cuda if args.compile is None else args.compile)
                lines = [header + ":", ""] + table(
                    ["implementation", "ms/step", "GB/s", "/ torch fused", "/ floor"],
                    [(label, f"{ms:.3f}", f"{gbs:.1f}", f"{f:.2f}", f"{fl:.2f}") for label, ms, gbs, f, fl in rows])
                lines += [f"- not timed: {s}" for s in skipped]
                print("\n".join(lines), flush=True)
                report += lines + [""]
            except Exception:
                report += [f"Timing ({dtype_name}): the part crashed: "
                           + traceback.format_exc(limit=1).splitlines()[-1], ""]
                traceback.print_exc()
            torch.cuda.empty_cache() if cuda else None

    code = 1 if failed else INCOMPLETE if incomplete else 0
    command = shlex.join(["python", "benchmarks/gpu_check.py"] + (sys.argv[1:] if argv is None else argv))
    section = [f"## GPU check: {name}, {now:%Y-%m-%d %H:%M} UTC", "",
               f"`{command}`; {versions()}; exit {code}.", ""] + report
    text = "\n".join(section).rstrip() + "\n"
    print("\n" + "=" * 80 + "\n" + text, flush=True)
    if results:
        with open(results, "a") as f:
            f.write("\n" + text)
        print(f"appended to {results}")
    return code


if __name__ == "__main__":
    sys.exit(main())
