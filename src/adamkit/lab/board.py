"""``--tensorboard DIR``: each run's evaluation records as TensorBoard scalars and its settings
as hparams, one subdirectory of ``DIR`` per run (``tensorboard --logdir DIR``).

Scalars are tagged ``split/metric`` (``val/accuracy``, ``train/batch_loss``, ...) at the
record's step; the hparams session holds the run's settings and its final metrics, tagged
``final/split/metric``. Written with :class:`torch.utils.tensorboard.SummaryWriter`, which
needs the ``tensorboard`` package (not a dependency of adamkit).
"""

import math
from dataclasses import asdict
from pathlib import Path

MISSING = "--tensorboard needs the tensorboard package: pip install tensorboard"
SETTINGS = ("task", "optimizer", "lr", "weight_decay", "decay", "init", "schedule", "precision", "seed", "model",
            "steps")


def available():
    """None where ``--tensorboard`` can write, else the one-line reason."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return MISSING
    return None


def run_name(config, settings=None):
    """A directory name that tells one run from the others of a command."""
    s = {**asdict(config), "precision": config.precision, **(settings or config.resolved())}
    return (f"{s['task']}-{s['optimizer']}-lr{s['lr']:g}-wd{s['weight_decay']:g}-{s['init']}-{s['schedule']}-"
            f"{s['precision']}-seed{s['seed']}")


def _hparam(value):
    if value is None:
        return "none"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Board:
    """One run's writer: :meth:`scalars` as records come, :meth:`finish` with the result."""

    def __init__(self, root, name):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(root) / name
        self.writer = SummaryWriter(log_dir=str(self.path))

    def scalars(self, records):
        for r in records:
            self.writer.add_scalar(f"{r['split']}/{r['metric']}", r["value"], r["step"])

    def finish(self, result):
        settings = {**asdict(result.config), "precision": result.config.precision, **result.settings}
        hparams = {k: _hparam(settings.get(k)) for k in SETTINGS}
        metrics = {f"final/{split}/{metric}": value for split, values in result.final.items()
                   for metric, value in values.items()}
        self.writer.add_hparams(hparams, metrics, run_name=".")  # the run's own directory: one session
        self.writer.close()


def write(root, name, result):
    """A finished run's records and hparams at once."""
    board = Board(root, name)
    board.scalars(result.records)
    board.finish(result)
    return board.path
