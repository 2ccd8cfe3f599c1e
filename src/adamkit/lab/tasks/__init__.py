"""The lab's tasks, one module each; ``TASKS`` maps each name to its :class:`Task`."""

from adamkit.lab.tasks.base import Problem, Task
from adamkit.lab.tasks.regression import Line, Poly

TASKS = {t.name: t for t in (Line(), Poly())}

__all__ = ["TASKS", "Task", "Problem"]
