"""The continual strategies by name: declared once as a :class:`StrategySpec`, looked up here.

Config validation (the value of ``strategy.name`` and the section ``strategy.<name>``), the
runner (the stream kind, the plugins), the records (``task_aware``) and the report read a
strategy's spec; nothing tests a strategy's name. Adding a strategy is one module that defines
its plugins, its options model and a ``SPEC``, plus its registration: a line in
:data:`BUILTIN_SPECS` for a strategy of cl-bench, or an entry point of the group
:data:`ENTRY_POINT_GROUP` (``name = "package.module:SPEC"``) for one that lives in another
package. docs/strategies.md, "Adding a strategy", has a worked example.
"""

from __future__ import annotations

from strategies.continual import builtin_specs as builtin
from strategies.continual import calibration_options as calibration
from strategies.continual import cumulative
from strategies.continual.routing import options as routing
from strategies.continual.spec import STREAM_KINDS, StrategyOptions, StrategySpec, StreamKind
from strategies.entry_points import STRATEGY_GROUP, load_group
from strategies.errors import StrategyRegistryError

__all__ = [
    "ENTRY_POINT_GROUP",
    "STREAM_KINDS",
    "StrategyOptions",
    "StrategyRegistryError",
    "StrategySpec",
    "StreamKind",
    "get_strategy",
    "register_strategy",
    "registry_version",
    "strategy_names",
]

#: the entry-point group through which other packages register strategies
ENTRY_POINT_GROUP = STRATEGY_GROUP


NAIVE = StrategySpec(
    name="naive", description="fine-tuning on each task in turn, no protection (lower bound)")
JOINT = StrategySpec(
    name="joint", stream="joint",
    description="one model trained on all tasks at once (upper bound; recorded as the last step)")
def _independent_plugins(options: calibration.CalibrationOptions, seed: int) -> list:
    """Its calibration plugin (imports Avalanche, so only when a run builds it)."""
    from strategies.continual.calibration_plugin import make_calibration_plugins

    return make_calibration_plugins(options, seed)


INDEPENDENT = StrategySpec(
    name="independent", stream="per_task", task_aware=True,
    description="one detector per task, each task tested with its own (task-aware oracle)",
    options=calibration.CalibrationOptions, make_plugins=_independent_plugins)

#: cl-bench's own strategies, in the order they are listed
BUILTIN_SPECS: tuple[StrategySpec, ...] = (
    NAIVE, builtin.REPLAY_SPEC, builtin.EWC_SPEC, builtin.SI_SPEC,
    builtin.FEATURE_DISTILLATION_SPEC, routing.SPEC, JOINT, INDEPENDENT, cumulative.SPEC,
    builtin.MAS_SPEC, builtin.AGEM_SPEC,
)

_specs: dict[str, StrategySpec] = {}
_version = 0
_entry_points_loaded = False


def register_strategy(spec: StrategySpec, *, replace: bool = False) -> None:
    """Make ``spec`` known under ``spec.name``.

    A second registration of a name is an error naming both sources, unless ``replace=True``.
    """
    global _version
    if not isinstance(spec, StrategySpec):
        raise TypeError(f"register_strategy needs a StrategySpec, got {type(spec).__name__}")
    known = _specs.get(spec.name)
    if known is not None and not replace and known is not spec:
        raise StrategyRegistryError(
            f"strategy {spec.name!r} is registered already (by {known.source}); {spec.source} "
            "registers it again. Give the new strategy another name, or pass replace=True to "
            "register_strategy to replace it on purpose")
    _specs[spec.name] = spec
    _version += 1


def _load_entry_points() -> None:
    """Register the specs that other packages declare under :data:`ENTRY_POINT_GROUP` (once),
    each with its distribution as its source (:mod:`strategies.entry_points`)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    load_group(ENTRY_POINT_GROUP, StrategySpec, lambda: _specs, register_strategy)


def _registry() -> dict[str, StrategySpec]:
    _load_entry_points()
    return _specs


def get_strategy(name: str) -> StrategySpec:
    """The spec registered as ``name``; an unknown name is an error listing the known ones."""
    specs = _registry()
    spec = specs.get(name)
    if spec is None:
        raise StrategyRegistryError(f"unknown strategy {name!r}; known: {', '.join(specs)}")
    return spec


def strategy_names() -> list[str]:
    """Every registered strategy name, built-in ones first, in registration order."""
    return list(_registry())


def registry_version() -> int:
    """A number that changes whenever a strategy is registered (config caches depend on it)."""
    _registry()
    return _version


for _spec in BUILTIN_SPECS:
    register_strategy(_spec)
