"""Implementations of the optimizer step, chosen by name through ``impl=``.

Every kernel module offers ``adam(...)`` and ``sgd(...)`` over flat lists of
tensors and knows nothing of param groups. The weight-decay mode arrives already
reduced to three scalars ``(l2, l1, shrink)`` (see :func:`adamkit.rules.decay_terms`).

- ``reference``: one tensor at a time through :mod:`adamkit.rules`; the oracle.
- ``foreach``:   torch's multi-tensor ``_foreach_*`` ops, a few launches per group.
"""

import importlib

from adamkit._checks import check_choice

IMPLS = ("auto", "reference", "foreach")


def resolve(impl, params):
    """The concrete implementation name for ``impl`` on these params."""
    check_choice(impl, "impl", IMPLS)
    if impl != "auto":
        return impl
    return "foreach"


def get(name):
    """The kernel module for a concrete implementation name."""
    return importlib.import_module(f"adamkit.torch.kernels.{name}")
