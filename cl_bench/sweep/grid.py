"""Sweep configurations: an experiment configuration plus a ``grid`` -> one cell per combination.

A sweep file is an ordinary experiment configuration (see ``experiments/``) with two extra
top-level keys:

- ``grid``: a mapping from dotted key paths to lists of values. The cells are the Cartesian
  product of the lists, each one ordinary run whose configuration is the base with the cell's
  values set (like ``--set key=value``). For list-valued keys (``model.methods``, ``seeds``,
  ``data.categories``, ...) a scalar value means a one-element list, so ``seeds: [0, 1, 2]`` is
  three cells with one seed each (write ``[[0, 1], [2]]`` to group seeds into one cell).
  ``data.order`` takes the named orders of :mod:`cl_bench.data.orders` (also ``random<k>``).
- ``exclude`` (optional): a list of partial cells; a cell whose values match every key of one
  entry is left out (e.g. ``{strategy.name: joint, data.order: reversed}``).

Each cell's ``run_id`` is a readable slug of its values plus a short hash of them, e.g.
``hybrid-replay-seed0-random1-3f9c2a``: the same grid gives the same ids, so a restarted sweep
finds the cells it completed. The run folder is ``<out>/<experiment>/<run_id>``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cl_bench.config import (
    ExperimentConfig,
    apply_overrides,
    load_yaml,
    parse_override,
    set_key,
    sync_strategy_sections,
    validate,
)
from cl_bench.data.orders import ALPHABETICAL, check_order, order_name, split_random_seed
from cl_bench.errors import ConfigError

GRID_KEY = "grid"
EXCLUDE_KEY = "exclude"
ORDER_KEY = "data.order"
#: keys whose value appears bare in a run id, in this order; other keys follow as key=value
SLUG_KEYS = ("model.methods", "strategy.name", "seeds", ORDER_KEY)
#: keys a grid may not vary: the sweep writes all its cells below one experiment folder
FORBIDDEN_GRID_KEYS = ("experiment", "description")
MAX_SLUG_CHARS = 96
HASH_CHARS = 6


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its id, the grid values that define it and its raw configuration.

    ``config`` is the base configuration with the cell's values set; a named order other than
    ``random<k>`` (which becomes ``order: random`` + ``order_seed``) stays in ``data.order`` as
    its name, resolved by the data layer where the cell runs (:mod:`cl_bench.data.orders`).
    """

    run_id: str
    experiment: str
    values: dict[str, Any]
    config: dict[str, Any]
    order: str  # the readable order name for records.csv

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_compact(v)}" for k, v in self.values.items())


@dataclass
class Sweep:
    """A loaded sweep file: the base configuration, the grid and the cells it expands to."""

    source: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    exclude: list[dict[str, Any]] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def experiment(self) -> str:
        return str(self.base.get("experiment", "default"))


# ---- loading -----------------------------------------------------------------------------------
def load_sweep(path: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Read a sweep file, apply ``--set`` overrides, expand and validate every cell.

    An override ``grid.<key.path>=[values]`` replaces (or adds) one axis of the grid; any other
    override sets a key of the base configuration.
    """
    raw = load_yaml(path)
    return sweep_from_dict(raw, source=str(path), overrides=overrides)


def sweep_from_dict(raw: dict, source: str = "<sweep>",
                    overrides: list[str] | None = None) -> Sweep:
    raw = dict(raw)
    grid = raw.pop(GRID_KEY, None)
    exclude = raw.pop(EXCLUDE_KEY, None) or []
    base_overrides = []
    for text in overrides or []:
        if text.startswith(f"{GRID_KEY}."):
            path, value = parse_override(text)
            grid = dict(grid) if isinstance(grid, dict) else {}
            grid[".".join(path[1:])] = value
        else:
            base_overrides.append(text)
    if grid is None:
        raise ConfigError(f"{source}: no 'grid:' mapping; a sweep file is an experiment config "
                          "plus grid: {key.path: [value, ...]} (see "
                          "experiments/synthetic_sweep.yaml); for a single run use `cl-bench run`")
    base = apply_overrides(raw, base_overrides)
    grid = _check_grid(grid, source)
    exclude = _check_exclude(exclude, grid, source)
    sweep = Sweep(source=source, base=base, grid=grid, exclude=exclude)
    sweep.cells = expand(sweep)
    return sweep


def _check_grid(grid: Any, source: str) -> dict[str, list[Any]]:
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{source}: grid: expected a non-empty mapping of key.path: [values], "
                          f"got {grid!r}")
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        where = f"{source}: grid.{key}"
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{source}: grid: keys are dotted key paths, got {key!r}")
        if key in FORBIDDEN_GRID_KEYS or key in (GRID_KEY, EXCLUDE_KEY):
            raise ConfigError(f"{where}: cannot be varied in a grid (all cells of a sweep share "
                              "one experiment folder); run separate sweeps instead")
        annotation = field_annotation(key, where)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: expected a non-empty list of values, got {values!r}")
        values = [_normalise(key, v, annotation, where) for v in values]
        texts = [json.dumps(v, sort_keys=True) for v in values]
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ConfigError(f"{where}: value(s) {', '.join(repeated)} listed twice; "
                              "list each once")
        checked[key] = values
    return checked


def _check_exclude(exclude: Any, grid: dict[str, list[Any]], source: str) -> list[dict[str, Any]]:
    if not isinstance(exclude, list):
        raise ConfigError(f"{source}: exclude: expected a list of mappings "
                          "{grid.key: value, ...}, got {exclude!r}")
    checked = []
    for i, entry in enumerate(exclude):
        where = f"{source}: exclude[{i}]"
        if not isinstance(entry, dict) or not entry:
            raise ConfigError(f"{where}: expected a mapping of grid keys to values, got {entry!r}")
        unknown = [k for k in entry if k not in grid]
        if unknown:
            raise ConfigError(f"{where}: {', '.join(unknown)} not a grid key; grid keys: "
                              f"{', '.join(grid)}")
        checked.append({k: _normalise(k, v, field_annotation(k, where), where)
                        for k, v in entry.items()})
    return checked


def field_annotation(key: str, where: str) -> Any:
    """The type annotation of the configuration field at dotted ``key`` (None below a dict).

    Raises :class:`ConfigError` naming the allowed keys when a part of the path is unknown.
    """
    sync_strategy_sections()  # strategy.<name> sections of every registered strategy
    model: type[BaseModel] | None = ExperimentConfig
    annotation: Any = None
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if model is None:  # below a free-form mapping such as model.options
            return None
        fields = model.model_fields
        if part not in fields:
            prefix = ".".join(parts[:depth]) or "the top level"
            raise ConfigError(f"{where}: unknown key {part!r} in {prefix}; allowed: "
                              f"{', '.join(sorted(fields))}")
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
        if model is None and depth < len(parts) - 1 and not _is_mapping(annotation):
            raise ConfigError(f"{where}: {'.'.join(parts[:depth + 1])} is a value, not a section")
    return annotation


def _is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict


def _is_list_field(annotation: Any) -> bool:
    """True for ``list[...]`` and ``list[...] | None``."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return True
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(members) and all(typing.get_origin(a) is list for a in members)
    return False


def _normalise(key: str, value: Any, annotation: Any, where: str) -> Any:
    if key == ORDER_KEY:
        check_order(value, where)
        return value
    if _is_list_field(annotation) and not isinstance(value, list) and value is not None:
        return [value]
    return value


# ---- expansion ---------------------------------------------------------------------------------
def expand(sweep: Sweep) -> list[Cell]:
    """Every cell of the grid (Cartesian product, first key varying slowest), validated.

    Raises :class:`ConfigError` for the first invalid cell (naming its values) before anything
    runs, and when two cells would get the same run id.
    """
    keys = list(sweep.grid)
    cells: list[Cell] = []
    seen: dict[str, Cell] = {}
    for combination in itertools.product(*(sweep.grid[k] for k in keys)):
        values = dict(zip(keys, combination, strict=True))
        if any(_matches(values, entry) for entry in sweep.exclude):
            continue
        cell = make_cell(sweep, values)
        if cell.run_id in seen:
            raise ConfigError(f"{sweep.source}: cells {seen[cell.run_id].label} and {cell.label} "
                              f"get the same run id {cell.run_id}")
        seen[cell.run_id] = cell
        cells.append(cell)
    if not cells:
        raise ConfigError(f"{sweep.source}: exclude leaves no cell of the grid to run")
    return cells


def _matches(values: dict[str, Any], entry: dict[str, Any]) -> bool:
    return all(_canonical(values[k]) == _canonical(v) for k, v in entry.items())


def make_cell(sweep: Sweep, values: dict[str, Any]) -> Cell:
    raw = apply_overrides(sweep.base, [])
    order_value = None
    for key, value in values.items():
        if key == ORDER_KEY:
            order_value = value
            continue
        raw = set_path(raw, key, value)
    base_order = (sweep.base.get("data") or {}).get("order")
    if order_value is None and base_order is not None:
        check_order(base_order, f"{sweep.source}: data.order")
        order_value = base_order
    if order_value is not None:
        raw = apply_order_name(raw, order_value)
    run_id = cell_run_id(values)
    cell = Cell(run_id=run_id, experiment=str(raw.get("experiment", "default")), values=values,
                config=raw, order=requested_order_name(raw))
    validate_cell(cell, sweep.source)
    return cell


def validate_cell(cell: Cell, source: str) -> None:
    """Validate the cell's configuration."""
    validate(cell.config, source=f"{source} (cell {cell.label})")


def apply_order_name(raw: dict, order: Any) -> dict:
    """``raw`` with ``data.order``/``data.order_seed`` set from a named order (a copy):
    ``random<k>`` becomes ``order: random, order_seed: k``, other orders are kept as they are."""
    check_order(order, "data.order")
    raw = copy.deepcopy(raw)
    data = raw.setdefault("data", {})
    order, seed = split_random_seed(order, data.get("order_seed"))
    data["order"] = order
    if seed is not None:
        data["order_seed"] = seed
    return raw


def requested_order_name(raw: dict) -> str:
    """The name of the order a raw cell configuration asks for (before resolution)."""
    data = raw.get("data") or {}
    return order_name(data.get("order", ALPHABETICAL), int(data.get("order_seed", 0) or 0))


def set_path(raw: dict, key: str, value: Any) -> dict:
    raw = copy.deepcopy(raw)
    set_key(raw, key.split("."), value, f"grid key {key} (in the base config)")
    return raw


# ---- run ids -----------------------------------------------------------------------------------
def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _compact(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_compact(v) for v in value)
    if isinstance(value, dict):
        return "+".join(f"{k}:{_compact(v)}" for k, v in sorted(value.items()))
    return str(value)


def _value_slug(key: str, value: Any) -> str:
    if key == ORDER_KEY:
        return order_name(value)
    if key == "seeds":
        return f"seed{_compact(value)}"
    if key in SLUG_KEYS:
        return _compact(value)
    return f"{key.rsplit('.', 1)[-1]}={_compact(value)}"


def cell_run_id(values: dict[str, Any]) -> str:
    """``<readable slug of the values>-<6 hex of their hash>``, independent of the grid's key order.

    >>> cell_run_id({"strategy.name": "naive", "model.methods": ["stpm"], "seeds": [1]})
    'stpm-naive-seed1-...'  # doctest: +SKIP
    """
    ordered = [k for k in SLUG_KEYS if k in values] + sorted(k for k in values
                                                               if k not in SLUG_KEYS)
    slug = "-".join(_value_slug(k, values[k]) for k in ordered)
    slug = re.sub(r"[^A-Za-z0-9_.+=-]+", "_", slug)[:MAX_SLUG_CHARS].strip("_.-")
    digest = hashlib.sha256(_canonical(values).encode()).hexdigest()[:HASH_CHARS]
    return f"{slug}-{digest}" if slug else digest
