"""Knowledge-distillation anomaly detectors: STPM, RD4AD and the hybrid (seed paper).

``build_detector(name, backbone, weights, **options)`` builds one around a frozen teacher from
:mod:`strategies.backbones`; ``DETECTOR_OPTIONS[name]`` lists the options it accepts with their
types, defaults and allowed values (configs are validated against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.backbones import build_teacher
from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.hybrid import HybridDetector
from strategies.detectors.rd4ad import RD4AD
from strategies.detectors.stpm import STPM
from strategies.errors import StrategiesError

__all__ = [
    "DETECTOR_OPTIONS",
    "AnomalyDetector",
    "DetectorOptionError",
    "DetectorOutput",
    "HybridDetector",
    "LossResult",
    "OptionSpec",
    "available_detectors",
    "build_detector",
]


class DetectorOptionError(StrategiesError, ValueError):
    """An unknown detector name or option, or an option value of the wrong type or range."""


@dataclass(frozen=True)
class OptionSpec:
    """One detector option: ``kind`` is "float", "int", "str" or "int3" (3 ints, a list)."""

    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False


_SIGMA = OptionSpec("float", 4.0, "Gaussian sigma (pixels) smoothing the final map")
_WIDTH = OptionSpec("float", 1.0, "multiplier of the OCBE/decoder inner widths (1 = official)")
_OCBE = OptionSpec("int", 3, "residual blocks in the OCBE compression")
_OCBE_WIDTH = OptionSpec("float", None, "multiplier of the OCBE blocks' inner width only; "
                         "null = width (official); 0.5 = anomalib's OCBE", nullable=True)
_DECODER = OptionSpec("int3", (6, 4, 3),
                      "decoder blocks per teacher level (level 1, 2, 3); official (6, 4, 3)")

DETECTOR_OPTIONS: dict[str, dict[str, OptionSpec]] = {
    "stpm": {"sigma": _SIGMA},
    "rd4ad": {
        "width": _WIDTH,
        "ocbe_blocks": _OCBE,
        "ocbe_width": _OCBE_WIDTH,
        "decoder_blocks": _DECODER,
        "loss": OptionSpec("str", "flat", "cosine over flattened C*H*W per sample (official) "
                           "or per pixel along channels", ("flat", "pixel")),
        "sigma": _SIGMA,
    },
    "hybrid": {
        "weighting": OptionSpec("str", "uncertainty", "loss weighting scheme",
                                ("fixed", "uncertainty", "dwa")),
        "fixed_lambda": OptionSpec("float", 0.5, "fixed: weight of the forward loss "
                                   "(reverse gets 1 - lambda)"),
        "dwa_temperature": OptionSpec("float", 2.0, "dwa: softmax temperature T"),
        "student_blocks": OptionSpec("int3", (2, 3, 6), "forward student blocks per stage"),
        "student_width": OptionSpec("int", 128, "forward student width_per_group (64 = plain)"),
        "student_planes": OptionSpec("int3", None, "forward student planes per stage; null = "
                                     "teacher channels / 4", nullable=True),
        "student_stem": OptionSpec("int", None, "forward student stem channels; null = "
                                   "min(64, teacher level-1 channels)", nullable=True),
        "reverse_width": _WIDTH,
        "ocbe_blocks": _OCBE,
        "ocbe_width": _OCBE_WIDTH,
        "decoder_blocks": _DECODER,
        "fusion_normalization": OptionSpec("str", "none", "'none': add the branches' raw "
                                           "1 - cos maps (already one unit); 'standardize': "
                                           "z-score each branch's level maps with training-"
                                           "image statistics first", ("standardize", "none")),
        "fusion_alpha": OptionSpec("float", 0.5, "weight of the reverse branch in the fused map"),
        "sigma": _SIGMA,
    },
}

_CLASSES = {"stpm": STPM, "rd4ad": RD4AD, "hybrid": HybridDetector}


def available_detectors() -> list[str]:
    return sorted(DETECTOR_OPTIONS)


def default_options(name: str) -> dict[str, Any]:
    return {key: spec.default for key, spec in DETECTOR_OPTIONS[name].items()}


def validate_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check ``options`` against ``DETECTOR_OPTIONS[name]``; return them converted."""
    if name not in DETECTOR_OPTIONS:
        raise DetectorOptionError(
            f"unknown detector {name!r}; choose one of {', '.join(available_detectors())}")
    specs = DETECTOR_OPTIONS[name]
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in specs:
            raise DetectorOptionError(
                f"detector {name!r} has no option {key!r}; its options are "
                f"{', '.join(sorted(specs))}")
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
        elif spec.kind == "int3":
            converted = tuple(int(v) for v in value)
            if len(converted) != 3 or any(v < 1 for v in converted):
                raise TypeError
        else:  # pragma: no cover
            raise TypeError
    except (TypeError, ValueError):
        raise DetectorOptionError(f"{where} must be of type {spec.kind} ({spec.help})") from None
    if spec.choices is not None and converted not in spec.choices:
        raise DetectorOptionError(
            f"{where} must be one of {', '.join(map(str, spec.choices))} ({spec.help})")
    return converted


def build_detector(name: str, backbone: str = "efficientnet_lite0",
                   weights: str | Path = "imagenet", **options: Any) -> AnomalyDetector:
    """Detector ``name`` ("stpm" | "rd4ad" | "hybrid") on a frozen ``backbone`` teacher.

    ``weights``: "imagenet", "none" or a state_dict file (see :mod:`strategies.backbones`);
    ``options``: see ``DETECTOR_OPTIONS[name]``.
    """
    checked = validate_options(name, options)
    teacher = build_teacher(backbone, weights)
    try:
        return _CLASSES[name](teacher, **checked)
    except ValueError as exc:
        if isinstance(exc, StrategiesError):
            raise
        raise DetectorOptionError(f"detector {name!r}: {exc}") from exc
