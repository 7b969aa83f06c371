"""The detector registry: every detector cl-bench can build, by its config name.

A detector is registered once, next to its class, as a :class:`DetectorSpec`: its name (the
value of ``model.methods``), a builder ``builder(teacher, **options) -> AnomalyDetector``, the
options it accepts (:class:`OptionSpec`, validated before anything is built), a one-line
description and where it comes from (``"cl-bench"`` for the built-ins; an entry point
``"pkg:obj"`` or a module name for a user's own). ``build_detector`` and ``DETECTOR_OPTIONS``
(:mod:`strategies.detectors`) and the config validation read this registry, so a detector
registered by a user's package is checked and built exactly like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strategies.errors import StrategiesError

if TYPE_CHECKING:
    from torch import nn

    from strategies.detectors.base import AnomalyDetector

__all__ = [
    "DetectorOptionError",
    "DetectorSpec",
    "OptionSpec",
    "detector_names",
    "get_detector",
    "register_detector",
    "validate_options",
]

OPTION_KINDS = ("float", "int", "str", "bool", "int3", "int2")


class DetectorOptionError(StrategiesError, ValueError):
    """An unknown detector name or option, or an option value of the wrong type or range."""


@dataclass(frozen=True)
class OptionSpec:
    """One detector option: ``kind`` is "float", "int", "str", "bool", "int3" or "int2"
    (a list of 3 or 2 positive ints)."""

    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise DetectorOptionError(
                f"OptionSpec kind {self.kind!r} is unknown; use one of {', '.join(OPTION_KINDS)}")


@dataclass(frozen=True)
class DetectorSpec:
    """A detector as the registry knows it.

    ``builder(teacher, **options)`` returns the detector around the frozen ``teacher`` (a
    :class:`strategies.teachers.backbones.FeatureExtractor`); ``options`` maps each option name to
    its :class:`OptionSpec` (the builder receives only validated, converted values).

    ``train_defaults``: the training settings of the detector's paper, as keys of the
    ``train`` section (``optimizer``, ``schedule``, ...). Every experiment trains the detector
    with them unless its ``train`` section or ``train.per_method.<name>`` sets the key
    (:func:`cl_bench.config.resolve_train_defaults`). The loss and its scale are part of the
    detector's code and are described in ``training_notes``.
    """

    name: str
    builder: Callable[..., AnomalyDetector]
    options: dict[str, OptionSpec] = field(default_factory=dict)
    description: str = ""
    source: str = "cl-bench"
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    training_notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise DetectorOptionError(
                f"detector name {self.name!r} must be letters, digits, '_' or '-' (it is a "
                "config value and a column of records.csv)")
        if not callable(self.builder):
            raise DetectorOptionError(f"detector {self.name!r}: builder must be callable")

    @property
    def learns_without_gradients(self) -> bool:
        """The builder's (class) attribute ``learns_without_gradients`` (False if absent)."""
        return bool(getattr(self.builder, "learns_without_gradients", False))

    def build(self, teacher: nn.Module, **options: Any) -> AnomalyDetector:
        return self.builder(teacher, **options)


_REGISTRY: dict[str, DetectorSpec] = {}


def register_detector(spec: DetectorSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to the registry; a name already taken is an error unless ``replace``."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and not replace and existing != spec:
        raise DetectorOptionError(
            f"detector {spec.name!r} is already registered (from {existing.source}); "
            f"{spec.source} registers it again. Choose another name, or pass replace=True")
    _REGISTRY[spec.name] = spec


def get_detector(name: str) -> DetectorSpec:
    """The spec registered as ``name``; an unknown name raises an error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DetectorOptionError(
            f"unknown detector {name!r}; choose one of {', '.join(detector_names())}"
        ) from None


def detector_names() -> list[str]:
    return sorted(_REGISTRY)


def default_options(name: str) -> dict[str, Any]:
    return {key: spec.default for key, spec in get_detector(name).options.items()}


def validate_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check ``options`` against detector ``name``'s option specs; return them converted."""
    specs = get_detector(name).options
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in specs:
            raise DetectorOptionError(
                f"detector {name!r} has no option {key!r}; its options are "
                f"{', '.join(sorted(specs)) or '(none)'}")
        checked[key] = _convert(name, key, specs[key], value)
    return checked


def _convert(name: str, key: str, spec: OptionSpec, value: Any) -> Any:
    where = f"option {key}={value!r} of detector {name!r}"
    if value is None:
        if spec.nullable:
            return None
        raise DetectorOptionError(f"{where} must not be null ({spec.help})")
    try:
        if spec.kind == "float":
            if isinstance(value, bool):
                raise TypeError
            converted: Any = float(value)
        elif spec.kind == "int":
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError
            converted = int(value)
        elif spec.kind == "str":
            if not isinstance(value, str):
                raise TypeError
            converted = value
        elif spec.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
            converted = value
        else:  # int3, int2
            converted = tuple(int(v) for v in value)
            if len(converted) != int(spec.kind[-1]) or any(v < 1 for v in converted):
                raise TypeError
    except (TypeError, ValueError):
        raise DetectorOptionError(f"{where} must be of type {spec.kind} ({spec.help})") from None
    if spec.choices is not None and converted not in spec.choices:
        raise DetectorOptionError(
            f"{where} must be one of {', '.join(map(str, spec.choices))} ({spec.help})")
    return converted


#: the Gaussian smoothing every built-in detector applies to its final map
SIGMA_OPTION = OptionSpec("float", 4.0, "Gaussian sigma (pixels) smoothing the final map")


class DetectorOptionsView(Mapping[str, dict[str, OptionSpec]]):
    """``DETECTOR_OPTIONS``: a live, read-only ``{name: {option: OptionSpec}}`` over the
    registry (a detector registered later appears in it)."""

    def __getitem__(self, name: str) -> dict[str, OptionSpec]:
        if name not in _REGISTRY:
            raise KeyError(name)
        return _REGISTRY[name].options

    def __iter__(self) -> Iterator[str]:
        return iter(detector_names())

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"DetectorOptionsView({detector_names()})"
