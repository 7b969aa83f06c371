"""The detector registry: a detector registered from outside is built, listed and validated like
the built-in ones; names and options are checked."""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel, Field

from cl_bench.config import validate
from cl_bench.errors import ConfigError
from strategies.detectors import (
    DETECTOR_OPTIONS,
    AnomalyDetector,
    DetectorOptionError,
    DetectorOptions,
    DetectorSpec,
    build_detector,
    detector_names,
    get_detector,
    register_detector,
)
from strategies.detectors import registry as registry_module
from strategies.detectors.stpm import STPM


class _ScaledTeacherNorm(AnomalyDetector):
    """A toy detector: the map is ``scale`` times the teacher's level-1 norm."""

    name = "toy_norm"

    def __init__(self, teacher, scale: float = 1.0) -> None:
        super().__init__(teacher)
        self.scale = scale


class _ToyOptions(DetectorOptions):
    scale: float = Field(1.0, gt=0, description="map scale")


@pytest.fixture
def toy_registered():
    spec = DetectorSpec("toy_norm", _ScaledTeacherNorm, _ToyOptions, "a toy", source="tests")
    register_detector(spec)
    yield spec
    registry_module._REGISTRY.pop("toy_norm", None)


def test_builtins_registered_next_to_their_classes() -> None:
    assert {"stpm", "rd4ad", "hybrid"} <= set(detector_names())
    stpm = get_detector("stpm")
    assert stpm.builder is STPM and stpm.source == "cl-bench"
    assert set(stpm.option_fields) == {"sigma"}


def test_registered_detector_is_built_listed_and_validated(toy_registered) -> None:
    assert "toy_norm" in detector_names()
    assert "toy_norm" in DETECTOR_OPTIONS and set(DETECTOR_OPTIONS["toy_norm"]) == {"scale"}
    detector = build_detector("toy_norm", "efficientnet_lite0", "none", scale="2")
    assert isinstance(detector, _ScaledTeacherNorm) and detector.scale == 2.0
    cfg = validate({"model": {"methods": ["toy_norm"], "options": {"toy_norm": {"scale": 3}}}})
    assert cfg.model.methods == ["toy_norm"]
    with pytest.raises(ConfigError, match=r"model.options.toy_norm.colour"):
        validate({"model": {"methods": ["toy_norm"], "options": {"toy_norm": {"colour": 1}}}})
    with pytest.raises(ConfigError, match=r"model.options.toy_norm.scale='x': must be a valid "
                       r"number.*allowed: a number > 0 \(map scale\)"):
        validate({"model": {"methods": ["toy_norm"], "options": {"toy_norm": {"scale": "x"}}}})
    with pytest.raises(ConfigError, match=r"model.options.toy_norm.scale=0: must be > 0"):
        validate({"model": {"methods": ["toy_norm"], "options": {"toy_norm": {"scale": 0}}}})


def test_unregistered_name_is_rejected_everywhere() -> None:
    with pytest.raises(DetectorOptionError, match=r"unknown detector 'toy_norm'.*stpm"):
        get_detector("toy_norm")
    assert "toy_norm" not in DETECTOR_OPTIONS
    with pytest.raises(ConfigError, match=r"model.methods\[0\].*toy_norm"):
        validate({"model": {"methods": ["toy_norm"]}})


def test_a_name_cannot_be_taken_twice(toy_registered) -> None:
    other = DetectorSpec("toy_norm", STPM, None, "another", source="elsewhere")
    with pytest.raises(DetectorOptionError, match=r"already registered.*tests"):
        register_detector(other)
    register_detector(other, replace=True)
    assert get_detector("toy_norm").source == "elsewhere"


def test_builder_must_return_a_detector() -> None:
    register_detector(DetectorSpec("not_a_detector", lambda teacher: torch.nn.Identity()))
    try:
        with pytest.raises(DetectorOptionError, match=r"not a strategies\.detectors"):
            build_detector("not_a_detector", "efficientnet_lite0", "none")
    finally:
        registry_module._REGISTRY.pop("not_a_detector", None)


class _NoDefault(DetectorOptions):
    scale: float


def test_bad_names_options_models_and_colours() -> None:
    with pytest.raises(DetectorOptionError, match="name"):
        DetectorSpec("bad name", STPM)
    with pytest.raises(DetectorOptionError, match="options must be a pydantic model class"):
        DetectorSpec("toy", STPM, {"scale": 1.0})
    with pytest.raises(DetectorOptionError, match=r"option\(s\) scale of _NoDefault have no "
                       "default"):
        DetectorSpec("toy", STPM, _NoDefault)
    with pytest.raises(DetectorOptionError, match=r"color 'red' is not '#RRGGBB'"):
        DetectorSpec("toy", STPM, color="red")
    assert issubclass(DetectorOptions, BaseModel)
