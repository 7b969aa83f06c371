"""Anomaly detectors: STPM, RD4AD, the hybrid (seed paper) and PatchCore, and any a user registers.

``build_detector(name, backbone, weights, **options)`` builds one around a frozen teacher from
:mod:`strategies.teachers.backbones`; ``DETECTOR_OPTIONS[name]`` lists the options it accepts (the
fields of its options model, with their types, defaults, ranges and descriptions; configs are
validated against the model). Both read the detector registry
(:mod:`strategies.detectors.registry`); each built-in detector registers itself next to its class
when its module is imported (below, in the order tables and figures list them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# importing the detectors' modules registers them; the registration order is the order of
# tables and figures, so these four are not sorted
# isort: off
import strategies.detectors.stpm
import strategies.detectors.rd4ad
import strategies.detectors.hybrid
import strategies.detectors.patchcore  # noqa: F401
# isort: on
from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.hybrid import HybridDetector
from strategies.detectors.registry import (
    DetectorOptionError,
    DetectorOptions,
    DetectorOptionsView,
    DetectorSpec,
    SmoothedMapOptions,
    default_options,
    detector_colors,
    detector_looks,
    detector_names,
    get_detector,
    register_detector,
    validate_options,
)
from strategies.errors import StrategiesError
from strategies.teachers.backbones import build_teacher

__all__ = [
    "DETECTOR_OPTIONS",
    "AnomalyDetector",
    "DetectorOptionError",
    "DetectorOptions",
    "DetectorOutput",
    "DetectorSpec",
    "HybridDetector",
    "LossResult",
    "SmoothedMapOptions",
    "available_detectors",
    "build_detector",
    "default_options",
    "detector_colors",
    "detector_looks",
    "detector_names",
    "get_detector",
    "register_detector",
    "validate_options",
]

#: ``{name: {option: pydantic FieldInfo}}``, a live read-only view of the registry
DETECTOR_OPTIONS = DetectorOptionsView()


def available_detectors() -> list[str]:
    return detector_names()


def build_detector(name: str, backbone: str = "efficientnet_lite0",
                   weights: str | Path = "imagenet", **options: Any) -> AnomalyDetector:
    """Detector ``name`` (see :func:`detector_names`) on a frozen ``backbone`` teacher.

    ``weights``: "imagenet", "none" or a state_dict file (see :mod:`strategies.teachers.backbones`);
    ``options``: see ``DETECTOR_OPTIONS[name]``.
    """
    spec = get_detector(name)
    checked = validate_options(name, options, where="detector option ")
    teacher = build_teacher(backbone, weights)
    try:
        detector = spec.build(teacher, **checked)
    except ValueError as exc:
        if isinstance(exc, StrategiesError):
            raise
        raise DetectorOptionError(f"detector {name!r}: {exc}") from exc
    if not isinstance(detector, AnomalyDetector):
        raise DetectorOptionError(
            f"detector {name!r} (from {spec.source}): its builder returned a "
            f"{type(detector).__name__}, not a strategies.detectors.AnomalyDetector")
    return detector
