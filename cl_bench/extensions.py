"""Bring your own method: detectors and continual strategies from the user's own packages.

cl-bench finds them without being edited, in two ways, both before a configuration is validated
(so their names and options are checked like the built-in ones):

- **entry points** of an installed distribution, loaded with :mod:`importlib.metadata`, e.g. in
  its ``pyproject.toml``::

      [project.entry-points."cl_bench.detectors"]
      mean_distance = "my_pkg.detector:SPEC"       # a strategies.detectors.DetectorSpec
      [project.entry-points."cl_bench.strategies"]
      my_strategy = "my_pkg.strategy:SPEC"         # a strategies.continual.registry.StrategySpec

  The object is a spec (registered with its distribution and entry point as its source, e.g.
  ``my-pkg (my_pkg.detector:SPEC)``) or a module (importing it registers what it defines); both
  groups are loaded by :func:`strategies.entry_points.load_group`.
- the run config's ``plugins: [my_pkg.detector, ...]``: modules imported in order; they call
  ``register_detector`` / ``register_strategy`` themselves. Specs they register with the default
  source ``"cl-bench"`` get the module's name as their source instead.

An import error names the module (or the entry point and its distribution) and its cause with
its file:line, as one :class:`ConfigError`; so does a name registered twice, naming both sources.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from typing import Any

from cl_bench.errors import ConfigError
from strategies.entry_points import DETECTOR_GROUP, STRATEGY_GROUP, cause, load_group
from strategies.errors import StrategiesError

__all__ = ["DETECTOR_GROUP", "STRATEGY_GROUP", "catalogue", "import_plugins", "load_entry_points",
           "load_extensions"]

#: loaded here; the strategies' group (STRATEGY_GROUP) by :mod:`strategies.continual.registry`
#: itself
ENTRY_POINT_GROUPS = (DETECTOR_GROUP,)

_loaded_groups: set[str] = set()


def _strategy_registry() -> types.ModuleType | None:
    """``strategies.continual.registry`` (issue 15), or None where this cl-bench lacks it."""
    try:
        return importlib.import_module("strategies.continual.registry")
    except ModuleNotFoundError as exc:
        if exc.name == "strategies.continual.registry":
            return None
        raise


def _registered() -> dict[str, dict[str, Any]]:
    """{"detectors": {name: spec}, "strategies": {name: spec}} as registered now."""
    from strategies.detectors import registry as detector_registry

    found: dict[str, dict[str, Any]] = {"detectors": dict(detector_registry._REGISTRY),
                                        "strategies": {}}
    strategy_registry = _strategy_registry()
    if strategy_registry is not None:
        found["strategies"] = {name: strategy_registry.get_strategy(name)
                               for name in strategy_registry.strategy_names()}
    return found


def _attribute_new_specs(before: dict[str, dict[str, Any]], source: str) -> None:
    """Specs registered since ``before`` with the default source get ``source`` instead."""
    from strategies.detectors import register_detector

    after = _registered()
    for name, spec in after["detectors"].items():
        if name not in before["detectors"] and spec.source == "cl-bench":
            register_detector(dataclasses.replace(spec, source=source), replace=True)
    strategy_registry = _strategy_registry()
    for name, spec in after["strategies"].items():
        if (strategy_registry is not None and name not in before["strategies"]
                and getattr(spec, "source", None) == "cl-bench"):
            strategy_registry.register_strategy(dataclasses.replace(spec, source=source),
                                                replace=True)


def load_entry_points(groups: tuple[str, ...] = ENTRY_POINT_GROUPS) -> None:
    """Register the detectors and strategies that installed distributions declare (once per
    process and group; the strategies' group through :mod:`strategies.continual.registry`), each
    with its distribution as its source (:mod:`strategies.entry_points`)."""
    from strategies.detectors import DetectorSpec, register_detector
    from strategies.detectors import registry as detector_registry

    try:
        strategy_registry = _strategy_registry()
        if strategy_registry is not None:
            strategy_registry.strategy_names()  # loads the cl_bench.strategies entry points
        for group in groups:
            if group in _loaded_groups:
                continue
            load_group(group, DetectorSpec, lambda: detector_registry._REGISTRY,
                       register_detector)
            _loaded_groups.add(group)
    except StrategiesError as exc:
        raise ConfigError(str(exc)) from exc


def import_plugins(modules: Any, where: str = "plugins") -> None:
    """Import the modules listed in a run config's ``plugins`` (in order)."""
    if modules is None:
        return
    if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
        raise ConfigError(f"{where}: expected a list of importable module names, e.g. "
                          f"[my_pkg.detector], got {modules!r}")
    for index, name in enumerate(modules):
        before = _registered()
        already = name in sys.modules
        try:
            importlib.import_module(name)
        except Exception as exc:  # any error of foreign code: one message naming it
            kind = ("is not importable (not installed, or not on PYTHONPATH?)"
                    if isinstance(exc, ModuleNotFoundError) and exc.name
                    and name.startswith(exc.name) else "failed to import")
            raise ConfigError(f"{where}[{index}]: module {name!r} {kind}: {cause(exc)}") from exc
        if not already:
            _attribute_new_specs(before, name)


def load_extensions(raw_plugins: Any = None) -> None:
    """Entry points, then the config's ``plugins`` modules: call before validating a config."""
    load_entry_points()
    import_plugins(raw_plugins)


def detector_option_rows(name: str) -> list[dict[str, Any]]:
    """Detector ``name``'s options as read from its options model: name, default (as YAML
    writes it), allowed values and description."""
    from strategies.detectors import default_options, get_detector
    from strategies.detectors.registry import allowed_values

    spec = get_detector(name)
    defaults = default_options(name)
    return [{"option": key, "default": _yaml_value(defaults[key]),
             "allowed": allowed_values(spec, key), "description": info.description or ""}
            for key, info in spec.option_fields.items()]


def _yaml_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def catalogue() -> list[dict[str, Any]]:
    """Every detector, backbone and strategy available, with its source, for ``cl-bench list``."""
    from strategies.detectors import detector_names, get_detector
    from strategies.teachers.backbones import available_backbones

    rows = []
    for name in detector_names():
        spec = get_detector(name)
        kind = "fit, no gradients" if spec.learns_without_gradients else "gradient-trained"
        rows.append({"kind": "detector", "name": name, "source": spec.source,
                     "description": f"{spec.description} [{kind}]".strip(),
                     "options": detector_option_rows(name)})
    for name in available_backbones():
        rows.append({"kind": "backbone", "name": name, "source": "cl-bench",
                     "description": "frozen teacher, three levels (strides 4, 8, 16)"})
    strategy_registry = _strategy_registry()
    if strategy_registry is not None:
        for name in strategy_registry.strategy_names():
            spec = strategy_registry.get_strategy(name)
            rows.append({"kind": "strategy", "name": name,
                         "source": getattr(spec, "source", "cl-bench"),
                         "description": getattr(spec, "description", "")})
    return rows
