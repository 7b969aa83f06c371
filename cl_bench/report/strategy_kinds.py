"""What the report needs to know of a strategy, read from its registered spec.

A *reference* strategy is not a continual learner under the protocol: it trains on another
stream than one task after another (``joint``, ``cumulative``, ``per_task``) or uses the task
identity at test time. References are listed after the continual strategies, never bold as the
best continual method, and get no intransigence. A run recorded under a name that is not
registered in this installation (a strategy from a package not installed here) is treated as a
sequential, task-agnostic strategy, with a warning that says so.

:mod:`strategies.continual.registry` is imported on first use only; it registers the strategies'
specs without importing their plugins (nor Avalanche), which the report does not need.
"""

from __future__ import annotations

import warnings
from functools import cache

#: the stream kinds of :mod:`strategies.continual.spec`, in the order references are listed
STREAM_ORDER = ("sequential", "joint", "cumulative", "per_task")


@cache
def _kind(strategy: str) -> tuple[str, bool]:
    """(stream kind, task-aware) of ``strategy``."""
    from cl_bench.report.variants import base_strategy
    from strategies.continual.registry import get_strategy
    from strategies.errors import StrategyRegistryError

    try:
        spec = get_strategy(base_strategy(strategy))
    except StrategyRegistryError as exc:
        warnings.warn(f"{exc}: its runs are reported as a sequential, task-agnostic strategy; "
                      "install the package that registers it to report it as declared",
                      stacklevel=2)
        return "sequential", False
    return spec.stream, spec.task_aware


def stream_of(strategy: str) -> str:
    """The stream kind of ``strategy`` (``sequential``, ``joint``, ``cumulative``, ``per_task``)."""
    return _kind(strategy)[0]


def is_task_aware(strategy: str, task_aware: bool = False) -> bool:
    """True when the run (``task_aware`` from its records) or the strategy uses task identity."""
    return task_aware or _kind(strategy)[1]


def is_reference(strategy: str, task_aware: bool = False) -> bool:
    """True for a strategy that is a reference, not a continual learner (module docstring)."""
    return is_task_aware(strategy, task_aware) or stream_of(strategy) != "sequential"


def reference_rank(strategy: str, task_aware: bool = False) -> int:
    """0 for a continual strategy; references after it, by stream kind (task-aware last)."""
    if not is_reference(strategy, task_aware):
        return 0
    stream = stream_of(strategy)
    return STREAM_ORDER.index(stream) if stream != "sequential" else len(STREAM_ORDER)
