"""One loader for the specs that installed distributions declare through entry points.

Both groups go through :func:`load_group`: ``cl_bench.detectors`` (:class:`DetectorSpec`, loaded
by ``cl_bench.extensions``) and ``cl_bench.strategies`` (:class:`StrategySpec`, loaded by
:mod:`strategies.continual.registry` on its first lookup). A spec registered this way records its
true source, the distribution and the entry point, e.g. ``cl-bench-example
(cl_bench_example.strategy:SPEC)``, so that ``cl-bench list`` shows it and a second
registration of a name (say ``naive``) names both packages. An entry point that cannot be
loaded is one error naming the entry point, its distribution and the file:line that failed.

The object an entry point names is a spec, or a module whose import registers what it defines
(its specs registered with the default source ``"cl-bench"`` get the entry point's source). A
spec's entry point carries the spec's own name (``mean_distance = "pkg.detector:SPEC"`` for the
spec named ``mean_distance``): a mismatch is an error, so that a spec cannot register under a
name its package does not show.
"""

from __future__ import annotations

import dataclasses
import traceback
import types
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from strategies.errors import EntryPointError

DETECTOR_GROUP = "cl_bench.detectors"
STRATEGY_GROUP = "cl_bench.strategies"
#: the source of the specs cl-bench defines itself (and the default of a spec's ``source``)
BUILTIN_SOURCE = "cl-bench"


def distribution_of(point: EntryPoint) -> str:
    """The name of the distribution that declares ``point`` (``?`` where unknown)."""
    return getattr(point.dist, "name", None) or "?"


def source_of(point: EntryPoint) -> str:
    """``"<distribution> (<module>:<object>)"``: where a spec loaded from ``point`` comes from."""
    return f"{distribution_of(point)} ({point.value})"


def cause(exc: BaseException) -> str:
    """``"<Type>: <message> (<file>:<line>)"``, the line being where the error was raised."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _load(point: EntryPoint) -> Any:
    try:
        return point.load()
    except Exception as exc:  # any error of foreign code: one message naming it
        raise EntryPointError(
            f"entry point {point.name} = {point.value} (group {point.group}, distribution "
            f"{distribution_of(point)}) cannot be loaded: {cause(exc)}; fix or uninstall the "
            "package that declares it") from exc


def load_group(group: str, spec_type: type, registered: Callable[[], Mapping[str, Any]],
               register: Callable[..., None]) -> None:
    """Register every spec that the entry points of ``group`` declare, in name order.

    ``registered()`` gives the registry's current {name: spec}; ``register(spec, replace=...)``
    adds one (and refuses a name taken, naming both sources).
    """
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        source = source_of(point)
        before = set(registered())
        obj = _load(point)
        if isinstance(obj, types.ModuleType):  # importing it registered what it defines
            for name, spec in registered().items():
                if name not in before and spec.source == BUILTIN_SOURCE:
                    register(dataclasses.replace(spec, source=source), replace=True)
            continue
        if not isinstance(obj, spec_type):
            raise EntryPointError(
                f"entry point {point.name} = {point.value} (group {group}, distribution "
                f"{distribution_of(point)}) is a {type(obj).__name__}; it must be a "
                f"{spec_type.__module__}.{spec_type.__name__} or a module")
        if obj.name != point.name:  # else one spec could hide behind two names, unnoticed
            raise EntryPointError(
                f"entry point {point.name} = {point.value} (group {group}, distribution "
                f"{distribution_of(point)}) names a spec called {obj.name!r}; the entry point's "
                f"name is the config name, so rename one of them to match")
        register(dataclasses.replace(obj, source=source))
