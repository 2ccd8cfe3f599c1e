"""The lab's tasks, one module each; ``TASKS`` maps each name to its :class:`Task`."""

from adamkit.lab.tasks.base import Problem, Task
from adamkit.lab.tasks.cancer import Cancer
from adamkit.lab.tasks.cartpole import CartPole
from adamkit.lab.tasks.digits import Digits
from adamkit.lab.tasks.mnist1d import MNIST1D
from adamkit.lab.tasks.recsys import Recsys
from adamkit.lab.tasks.regression import Line, Poly
from adamkit.lab.tasks.text import Text

TASKS = {t.name: t for t in (MNIST1D(), Digits(), Cancer(), Text(), Recsys(), CartPole(), Line(), Poly())}

__all__ = ["TASKS", "Task", "Problem"]
