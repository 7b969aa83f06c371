"""The detector registry: every detector cl-bench can build, by its config name.

A detector is registered once, next to its class, as a :class:`DetectorSpec`: its name (the
value of ``model.methods``), a builder ``builder(teacher, **options) -> AnomalyDetector``, its
options as a pydantic model (a subclass of :class:`DetectorOptions`: each option a typed field
with its default, its allowed range and a description), a one-line description, where it comes
from (``"cl-bench"`` for the built-ins; an entry point ``"pkg:obj"`` or a module name for a
user's own), the training defaults of its paper, and how figures show it (``label``, ``color``).
``build_detector`` and ``DETECTOR_OPTIONS`` (:mod:`strategies.detectors`), ``cl-bench list``, the
config validation and the report read this registry, so a detector registered by a user's
package is checked, built, listed and drawn exactly like the built-in ones.

The registry lists detectors in registration order (the built-ins in the order
:mod:`strategies.detectors` imports them: stpm, rd4ad, hybrid, patchcore); tables and figures
use that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strategies.errors import StrategiesError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo
    from torch import nn

    from strategies.detectors.base import AnomalyDetector

__all__ = [
    "DetectorOptionError",
    "DetectorOptions",
    "DetectorSpec",
    "SmoothedMapOptions",
    "allowed_values",
    "default_options",
    "detector_colors",
    "detector_looks",
    "detector_names",
    "get_detector",
    "register_detector",
    "validate_options",
]

#: the Gaussian sigma every built-in detector smooths its final map with (maps.DEFAULT_SIGMA)
DEFAULT_SIGMA = 4.0
_HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


class DetectorOptionError(StrategiesError, ValueError):
    """An unknown detector name or option, or an option value of the wrong type or range."""


class DetectorOptions(BaseModel):
    """Base of a detector's options model: an unknown key is an error, assignments validated.

    Every field needs a default (a config may omit any option) and should carry its allowed
    range (``Field(ge=..., le=...)``, ``Literal[...]``) and a ``description``: both appear in
    ``cl-bench list --options`` and in the error a bad value gets.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SmoothedMapOptions(DetectorOptions):
    """The option every built-in detector shares: the Gaussian smoothing of its final map."""

    sigma: float = Field(DEFAULT_SIGMA, ge=0,
                         description="Gaussian sigma (pixels) smoothing the final map; 0 = none")


@dataclass(frozen=True)
class DetectorSpec:
    """A detector as the registry knows it.

    ``builder(teacher, **options)`` returns the detector around the frozen ``teacher`` (a
    :class:`strategies.teachers.backbones.FeatureExtractor`); ``options`` is the detector's options
    model (a :class:`DetectorOptions` subclass, ``None`` for a detector without options): the
    builder receives every option, validated, defaults filled in (:func:`validate_options`).

    ``train_defaults``: the training settings of the detector's paper, as keys of the
    ``train`` section (``optimizer``, ``schedule``, ...). Every experiment trains the detector
    with them unless its ``train`` section or ``train.per_method.<name>`` sets the key
    (:func:`cl_bench.config.resolve_train_defaults`). The loss and its scale are part of the
    detector's code and are described in ``training_notes``.

    ``label``: the detector's name in figure legends (default: ``name``); ``color``: its colour
    in every figure, ``"#RRGGBB"`` (default: a spare Okabe-Ito colour, the same in every
    report of an installation: :func:`detector_colors`).
    """

    name: str
    builder: Callable[..., AnomalyDetector]
    options: type[BaseModel] | None = None
    description: str = ""
    source: str = "cl-bench"
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    training_notes: str = ""
    label: str = ""
    color: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise DetectorOptionError(
                f"detector name {self.name!r} must be letters, digits, '_' or '-' (it is a "
                "config value and a column of records.csv)")
        if not callable(self.builder):
            raise DetectorOptionError(f"detector {self.name!r}: builder must be callable")
        if self.options is not None:
            self._check_options_model()
        if self.color is not None and not _HEX_COLOR.fullmatch(str(self.color)):
            raise DetectorOptionError(
                f"detector {self.name!r}: color {self.color!r} is not '#RRGGBB' (e.g. the "
                "Okabe-Ito sky blue '#56B4E9', strategies.palette.OKABE_ITO)")

    def _check_options_model(self) -> None:
        if not (isinstance(self.options, type) and issubclass(self.options, BaseModel)):
            raise DetectorOptionError(
                f"detector {self.name!r}: options must be a pydantic model class (a subclass of "
                f"strategies.detectors.DetectorOptions), got {self.options!r}")
        required = [key for key, info in self.options.model_fields.items() if info.is_required()]
        if required:
            raise DetectorOptionError(
                f"detector {self.name!r}: option(s) {', '.join(required)} of "
                f"{self.options.__name__} have no default; give each a default (a config may "
                "omit any option)")

    @property
    def display_label(self) -> str:
        """``label``, or the name when the spec gives none."""
        return self.label or self.name

    @property
    def option_fields(self) -> dict[str, FieldInfo]:
        """``{option: pydantic FieldInfo}`` of the options model (empty without one)."""
        return dict(self.options.model_fields) if self.options is not None else {}

    @property
    def learns_without_gradients(self) -> bool:
        """The builder's (class) attribute ``learns_without_gradients`` (False if absent)."""
        return bool(getattr(self.builder, "learns_without_gradients", False))

    def build(self, teacher: nn.Module, **options: Any) -> AnomalyDetector:
        return self.builder(teacher, **options)


_REGISTRY: dict[str, DetectorSpec] = {}


def register_detector(spec: DetectorSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to the registry; a name already taken is an error unless ``replace`` (a
    replaced spec keeps its place in the order)."""
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
    """Every registered detector, in registration order (the built-ins first)."""
    return list(_REGISTRY)


def default_options(name: str) -> dict[str, Any]:
    """Detector ``name``'s options with their defaults (the options model's)."""
    return {key: info.get_default(call_default_factory=True)
            for key, info in get_detector(name).option_fields.items()}


def validate_options(name: str, options: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``options`` checked against detector ``name``'s options model: every option, converted,
    defaults filled in.

    A bad value is one :class:`DetectorOptionError` naming ``<where><name>.<option>=<value>``,
    what is wrong, the allowed values and the option's description, e.g.
    ``model.options.patchcore.coreset_ratio=1.5: must be <= 1; allowed: a number > 0 and <= 1
    (share of ...)`` (``where`` = ``"model.options."`` in config validation).
    """
    spec = get_detector(name)
    fields = spec.option_fields
    for key, value in options.items():
        if key not in fields:
            raise DetectorOptionError(
                f"{where}{name}.{key}: detector {name!r} has no option {key!r}; its options are "
                f"{', '.join(fields) or '(none)'}")
        # pydantic's lax mode reads true/false as 1/0; a flag given for a number is a mistake
        if isinstance(value, bool) and not _allows_bool(fields[key]):
            raise _option_error(spec, where, key, value, "must be a number, not true/false")
    if spec.options is None:
        return {}
    try:
        return spec.options(**options).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else None
        reason = _reason(first)
        if key is None:  # a check across options (a model validator)
            raise DetectorOptionError(f"{where}{name}: {reason}") from None
        raise _option_error(spec, where, key, options.get(key), reason) from None


def _allows_bool(info: FieldInfo) -> bool:
    return info.annotation is bool or bool in get_args(info.annotation)


_REASONS = (("Input should be less than or equal to", "must be <="),
            ("Input should be greater than or equal to", "must be >="),
            ("Input should be less than", "must be <"),
            ("Input should be greater than", "must be >"),
            ("Input should be", "must be"), ("Value error, ", ""))


def _reason(error: Mapping[str, Any]) -> str:
    """pydantic's message, shortened, e.g. "Input should be less than or equal to 1" -> "must be
    <= 1"."""
    if error["type"] == "missing":  # an item of a fixed-length list
        return "has too few items"
    if error["type"] == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    message = str(error["msg"])
    for long, short in _REASONS:
        if message.startswith(long):
            return short + message[len(long):]
    return message


def _option_error(spec: DetectorSpec, where: str, key: str, value: Any,
                  reason: str) -> DetectorOptionError:
    description = spec.option_fields[key].description
    return DetectorOptionError(
        f"{where}{spec.name}.{key}={value!r}: {reason}; allowed: {allowed_values(spec, key)}"
        + (f" ({description})" if description else ""))


def allowed_values(spec: DetectorSpec, key: str) -> str:
    """Option ``key``'s type and range in words, from the options model's JSON schema, e.g.
    "a number > 0 and <= 1", "one of 'growing', 'budget'", "an integer >= 1, or null"."""
    assert spec.options is not None
    try:
        schema = spec.options.model_json_schema()["properties"][key]
    except Exception:  # a type pydantic cannot put in a JSON schema: say its annotation
        return str(spec.option_fields[key].annotation)
    return _describe(schema)


_TYPE_WORDS = {"number": "a number", "integer": "an integer", "string": "a string",
               "boolean": "true or false", "null": "null"}
_BOUNDS = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"),
           ("maximum", "<="))


def _describe(schema: Mapping[str, Any]) -> str:
    if "anyOf" in schema:
        return ", or ".join(_describe(part) for part in schema["anyOf"])
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return "one of " + ", ".join(repr(v) for v in values)
    if schema.get("type") == "array":
        items = schema.get("prefixItems")
        if items:
            return f"a list of {len(items)} items, each {_describe(items[0])}"
        return f"a list, each item {_describe(schema.get('items', {}))}"
    words = _TYPE_WORDS.get(schema.get("type", ""), "any value")
    bounds = [f"{op} {schema[k]:g}" for k, op in _BOUNDS if k in schema]
    return " ".join([words, " and ".join(bounds)]).strip()


def detector_colors(names: Iterable[str] = ()) -> dict[str, str]:
    """``{detector: "#RRGGBB"}`` for every registered detector and each of ``names``.

    A detector's own ``color`` first; the others, registered ones in registration order and
    then the unregistered ``names`` (runs of a detector not installed here) in name order, take
    the Okabe-Ito colours no registered detector declares (:data:`strategies.palette.SPARE_ORDER`,
    cycling when there are more detectors than colours). A registered detector's colour is
    therefore the same in every figure of an installation.
    """
    from strategies.palette import assign_colors

    return assign_colors({name: spec.color for name, spec in _REGISTRY.items()}, list(names))


def detector_looks() -> list[dict[str, str]]:
    """How figures and tables show every registered detector, in registration order:
    ``[{"name", "label", "color", "source"}]`` with each colour resolved
    (:func:`detector_colors`). A run writes this into its manifest (``detectors``), so its
    report can name, order and colour the detectors without importing them (and torch).
    """
    colors = detector_colors()
    return [{"name": name, "label": spec.display_label, "color": colors[name],
             "source": spec.source} for name, spec in _REGISTRY.items()]


class DetectorOptionsView(Mapping[str, dict[str, "FieldInfo"]]):
    """``DETECTOR_OPTIONS``: a live, read-only ``{name: {option: pydantic FieldInfo}}`` over the
    registry (a detector registered later appears in it)."""

    def __getitem__(self, name: str) -> dict[str, FieldInfo]:
        if name not in _REGISTRY:
            raise KeyError(name)
        return _REGISTRY[name].option_fields

    def __iter__(self) -> Iterator[str]:
        return iter(detector_names())

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"DetectorOptionsView({detector_names()})"
