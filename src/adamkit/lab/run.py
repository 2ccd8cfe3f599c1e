"""One training run: ``run(RunConfig) -> RunResult`` with flat records.

Every command of the lab (demo, run, compare, and sweeps built on it) trains through
:func:`run`. A run builds its task's problem, initializes the model with
:func:`adamkit.torch.init_model`, splits decayed from non-decayed parameters with
:func:`adamkit.torch.param_groups`, builds an adamkit optimizer and drives its learning
rate with :func:`adamkit.torch.scheduler` over an :mod:`adamkit.schedules` schedule.
Each evaluation yields one row per (split, metric); ``on_eval(step, rows)`` sees them as
they come. A run stops, recorded as diverged with its reason, when the loss becomes NaN or
infinite or when a param group's weight-decay factor (``1 - lr*wd``, or ``1 - eta*wd`` for
``independent`` decay) leaves (0, 1], where the weights would flip sign or grow.
"""

import math
import time
from dataclasses import asdict, dataclass, field

from adamkit import init as initializers
from adamkit import rules, schedules
from adamkit.lab.optimizers import DECAY_MODES, OPTIMIZERS
from adamkit.rounding import ROUNDINGS

FIELDS = ("task", "optimizer", "lr", "weight_decay", "decay", "init", "schedule", "precision", "seed", "step",
          "split", "metric", "value")
DTYPES = ("fp32", "fp64", "bf16")
MAX_SEED = 2**64 - 1  # torch.manual_seed's largest
MAX_STEPS = 10**9  # past this a typo, not a plan
# Short names for the init study; "normal" and "uniform" mean small random weights here.
INIT_ALIASES = {"xavier": "xavier_normal", "he": "he_normal"}
INIT_OPTIONS = {"normal": {"std": 0.01}, "uniform": {"a": -0.01, "b": 0.01}}


def _warmup_steps(n):
    return n // 20


SCHEDULES = {
    "constant": lambda n: schedules.constant(),
    "cosine": lambda n: schedules.cosine(n),
    "linear": lambda n: schedules.linear(n),
    "warmup_cosine": lambda n: schedules.warmup_cosine(n, _warmup_steps(n)) if n > 1 else schedules.constant(),
    "wsd": lambda n: schedules.wsd(n, _warmup_steps(n), max(1, n // 5)),
}


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def _number(name, value, minimum, strict):
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > minimum if strict else value >= minimum))
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")


def _integer(name, value, minimum, maximum=None):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}"
                         f"{'' if maximum is None else f' and <= {maximum}'}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer >= {minimum} and <= {maximum}, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    task: str
    optimizer: str = "adamw"
    lr: float | None = None            # None: the task's default for this optimizer
    weight_decay: float | None = None  # None: the task's default for the decay mode (0 without one)
    decay: str | None = None           # None: the optimizer's mode
    init: str | None = None            # None: the task's default
    schedule: str = "constant"
    steps: int | None = None           # None: the task's budget (its quick budget when quick)
    quick: bool = False
    seed: int = 0
    model: str | None = None           # task-specific variant
    device: str = "cpu"
    dtype: str = "fp32"
    rounding: str = "nearest"          # with dtype bf16: nearest, kahan or stochastic
    threads: int = 1                   # torch threads for this run
    data: str | None = None            # user data file, for tasks that take one

    def validate(self):
        """Raise ValueError naming the first bad field and what it allows."""
        from adamkit.lab.tasks import TASKS

        _one_of("task", self.task, TASKS)
        task = TASKS[self.task]
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            _number("lr", self.lr, 0, strict=True)
        if self.weight_decay is not None:
            _number("weight decay", self.weight_decay, 0, strict=False)
        if self.decay is not None:
            _one_of("decay", self.decay, DECAY_MODES)
        if self.init is not None:
            _one_of("init", self.init, (*initializers.INITIALIZERS, *INIT_ALIASES))
        _one_of("schedule", self.schedule, SCHEDULES)
        if self.steps is not None:
            _integer("steps", self.steps, 1, MAX_STEPS)
        _integer("seed", self.seed, 0, MAX_SEED)
        if self.model is not None:
            _one_of(f"model for task {self.task!r}", self.model, task.models)
        _one_of("dtype", self.dtype, DTYPES)
        _one_of("rounding", self.rounding, ROUNDINGS)
        if self.rounding != "nearest" and self.dtype != "bf16":
            raise ValueError(f"rounding {self.rounding!r} changes bf16 weights only; use --dtype bf16")
        _integer("threads", self.threads, 1)
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"unknown device {self.device!r}; expected cpu or cuda")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"device {self.device!r} is not available on this machine; use cpu")
        if self.data is not None:
            if not task.takes_data:
                takes = ", ".join(n for n, t in TASKS.items() if t.takes_data)
                raise ValueError(f"task {self.task!r} takes no --data file (tasks that do: {takes})")
            task.check_data(self.data)

    @property
    def precision(self):
        """``fp32``, ``bf16``, ``bf16-kahan``, ...: the dtype, and the rounding where it is not nearest."""
        return self.dtype if self.rounding == "nearest" else f"{self.dtype}-{self.rounding}"

    def resolved(self):
        """The settings the run uses: every ``None`` replaced by the task's default."""
        from adamkit.lab.tasks import TASKS

        task, spec = TASKS[self.task], OPTIMIZERS[self.optimizer]
        decay = self.decay or spec.mode
        if self.weight_decay is not None:
            wd = self.weight_decay
        else:
            wd = task.default_weight_decay(decay) if spec.mode or self.decay else 0.0
        init = self.init or task.init
        return {"lr": self.lr if self.lr is not None else task.default_lr(self.optimizer, spec.family),
                "weight_decay": wd, "decay": decay if wd else None,
                "init": INIT_ALIASES.get(init, init), "model": self.model or task.models[0],
                "steps": self.steps or (task.quick_budget if self.quick else task.budget)}


@dataclass(frozen=True)
class Option:
    """A :class:`RunConfig` field as a command-line option: declared here once, for every command."""

    field: str
    help: str
    type: type = str
    default_text: str | None = None  # the help's words for a None default

    @property
    def flag(self):
        return "--" + self.field.replace("_", "-")


def _listed(names):
    return ", ".join(names)


RUN_OPTIONS = {o.field: o for o in (
    Option("optimizer", f"optimizer: {_listed(OPTIMIZERS)}"),
    Option("lr", "learning rate", float, "the task's for each optimizer"),
    Option("weight_decay", "weight decay", float, "the task's for the decay mode"),
    Option("decay", f"decay mode: {_listed(DECAY_MODES)}", str, "the optimizer's"),
    Option("init", "initializer: zeros, normal (std 0.01), uniform (±0.01), xavier_uniform, xavier_normal "
           "(xavier), he_uniform, he_normal (he)", str, "the task's"),
    Option("schedule", f"learning-rate schedule: {_listed(SCHEDULES)}"),
    Option("steps", "training steps", int, "the task's budget"),
    Option("quick", "the task's quick budget: seconds, for smoke runs", bool),
    Option("seed", "seed of the init and the batch order", int),
    Option("model", "the task's model variant (see `adamkit tasks`)", str, "the task's first"),
    Option("data", "a data file of your own, for tasks that take one (text, recsys)", str, "none"),
    Option("device", "cpu or cuda"),
    Option("dtype", f"weight dtype: {_listed(DTYPES)}"),
    Option("rounding", f"how updates reach bf16 weights: {_listed(ROUNDINGS)}"),
    Option("threads", "torch threads per run (1: reproducible)", int),
)}


def clean(value):
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclass
class RunResult:
    config: RunConfig
    records: list            # one dict per (evaluation, split, metric), keys FIELDS
    primary: str
    higher_is_better: bool
    final: dict              # {"val": {metric: value}, "test": {metric: value}} at the end
    diverged: bool
    seconds: float
    settings: dict = field(default_factory=dict)  # resolved hyperparameters, torch version, threads
    diverged_at: int | None = None
    diverged_reason: str | None = None  # e.g. "loss became nan at step 12"
    model: object = field(default=None, repr=False, compare=False)  # the trained model (not saved)

    def summary(self):
        """A JSON-safe dict for summary.json."""
        return clean({"config": asdict(self.config), "settings": self.settings, "primary": self.primary,
                      "higher_is_better": self.higher_is_better, "final": self.final,
                      "diverged": self.diverged, "diverged_at": self.diverged_at,
                      "diverged_reason": self.diverged_reason,
                      "seconds": round(self.seconds, 3)})

    def curve(self, split, metric):
        """``(steps, values)`` of one metric."""
        rows = [r for r in self.records if r["split"] == split and r["metric"] == metric]
        return [r["step"] for r in rows], [r["value"] for r in rows]


def decay_factor_problem(param_groups):
    """Why the next step would be no weight decay at all, or None: a group whose decay factor
    leaves (0, 1] (computed with :func:`adamkit.rules.decay_terms`, as the optimizer does)."""
    for group in param_groups:
        wd = float(group.get("weight_decay") or 0.0)
        if wd == 0:
            continue
        lr = float(group["lr"])
        reference = group.get("reference_lr")
        eta = rules.schedule_multiplier(lr, float(reference)) if reference else 1.0
        shrink = rules.decay_terms(group.get("decay") or "l2", wd, lr, eta).shrink
        if not 0.0 < shrink <= 1.0:
            return f"weight decay factor {shrink:.4g} outside (0, 1] (lr {lr:g} × weight decay {wd:g})"
    return None


def _eval_steps(steps, evals):
    if evals is None or evals >= steps:
        return range(1, steps + 1)  # every step; a range answers `in` without a set of them all
    return {max(1, round(k * steps / evals)) for k in range(1, evals + 1)}


def _init_options(scheme, nonlinearity):
    if scheme.startswith("he_"):
        return {"nonlinearity": nonlinearity}
    if scheme.startswith("xavier_"):
        return {"gain": initializers.calculate_gain(nonlinearity)}
    return INIT_OPTIONS.get(scheme, {})


def run(config: RunConfig, on_eval=None, progress=None) -> RunResult:
    """Train one configuration; see the module docstring. ``progress(n)`` after every step."""
    import torch

    import adamkit.torch as ak
    from adamkit.lab.optimizers import build
    from adamkit.lab.tasks import TASKS

    config.validate()
    task, settings = TASKS[config.task], config.resolved()
    steps = settings["steps"]
    dtype = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.bfloat16}[config.dtype]
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    try:
        torch.manual_seed(config.seed)
        problem = task.setup(config, dtype, config.device)
        model = problem.model
        ak.init_model(model, settings["init"], seed=config.seed,
                      **_init_options(settings["init"], task.nonlinearity))
        model.to(config.device)
        groups = ak.param_groups(model, settings["weight_decay"])
        decayed = groups[0]["params"]
        # The first weight matrix: how many distinct units (rows) it has shows whether an
        # init broke the symmetry between hidden units (zeros never does).
        first = next((p for p in model.parameters() if p.ndim >= 2), None)
        optimizer = build(config.optimizer, groups, settings["lr"], settings["decay"], rounding=config.rounding,
                          rounding_seed=config.seed)
        scheduler = ak.scheduler(optimizer, SCHEDULES[config.schedule](steps))
        base = {"task": config.task, "optimizer": config.optimizer, "lr": settings["lr"],
                "weight_decay": settings["weight_decay"], "decay": settings["decay"], "init": settings["init"],
                "schedule": config.schedule, "precision": config.precision, "seed": config.seed}
        records, final, diverged_at, reason = [], {}, None, None
        when = _eval_steps(steps, task.evals)
        losses = []

        def evaluate(step, lr):
            metrics = problem.evaluate()
            metrics.setdefault("train", {})["batch_loss"] = sum(losses) / len(losses) if losses else math.nan
            with torch.no_grad():
                norm = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in decayed))
            metrics.setdefault("model", {}).update(weight_norm=norm, lr=lr)
            if first is not None:
                metrics["model"]["distinct_units"] = len(torch.unique(first.detach().reshape(len(first), -1), dim=0))
            rows = [{**base, "step": step, "split": split, "metric": name, "value": float(value)}
                    for split, values in metrics.items() for name, value in values.items()]
            records.extend(rows)
            losses.clear()
            final.clear()
            final.update({s: dict(metrics.get(s, {})) for s in ("val", "test")})
            if on_eval:
                on_eval(step, rows)

        model.train()
        for step in range(1, steps + 1):
            lr = optimizer.param_groups[0]["lr"]
            loss = problem.loss(step)
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                reason = f"loss became {value} at step {step}"
            else:
                bad = decay_factor_problem(optimizer.param_groups)
                reason = f"{bad} at step {step}" if bad else None
            if reason is None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                try:
                    optimizer.step()
                except ValueError as e:  # an optimizer that refuses the factor itself
                    if "weight decay" not in str(e):
                        raise
                    reason = f"{str(e).split(':')[0]} at step {step}"
            if reason is not None:
                diverged_at = step
                evaluate(step, lr)
                break
            scheduler.step()
            if progress:
                progress(1)
            if step in when:
                evaluate(step, lr)
        if diverged_at is None and not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            diverged_at = steps  # the last update made the weights non-finite
            reason = f"weights became non-finite by step {steps}"
        state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.dim()]
        params = sum(p.numel() for p in model.parameters())
        settings.update(torch=torch.__version__, threads=config.threads, device=config.device,
                        dtype=config.dtype, rounding=config.rounding, schedule=config.schedule,
                        state_bytes_per_param=sum(t.numel() * t.element_size() for t in state) / max(params, 1),
                        hidden_units=len(first) if first is not None else None)
        return RunResult(config, records, task.primary, task.higher_is_better, final, diverged_at is not None,
                         time.perf_counter() - started, settings, diverged_at, reason, model)
    finally:
        torch.set_num_threads(threads)
