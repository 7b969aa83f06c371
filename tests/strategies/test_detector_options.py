"""Detector options are pydantic models: their defaults are the detectors' own (records stay
identical), their ranges are checked, and errors name the detector, option, value and range."""

from __future__ import annotations

import inspect

import pytest

from cl_bench.config import validate
from cl_bench.errors import ConfigError
from strategies.detectors import (
    DETECTOR_OPTIONS,
    DetectorOptionError,
    default_options,
    detector_names,
    get_detector,
    validate_options,
)

#: the defaults the hand-written OptionSpec tables declared before the options became models
#: (so that a run that sets no option builds the detectors it built before)
OPTION_SPEC_DEFAULTS = {
    "stpm": {"sigma": 4.0},
    "rd4ad": {"width": 1.0, "ocbe_blocks": 3, "ocbe_width": None, "decoder_blocks": (6, 4, 3),
              "loss": "flat", "sigma": 4.0},
    "hybrid": {"weighting": "uncertainty", "fixed_lambda": 0.5, "dwa_temperature": 2.0,
               "student_blocks": (2, 3, 6), "student_width": 128, "student_planes": None,
               "student_stem": None, "reverse_width": 1.0, "ocbe_blocks": 3, "ocbe_width": None,
               "decoder_blocks": (6, 4, 3), "fusion_normalization": "none",
               "fusion_alpha": 0.5, "sigma": 4.0},
    "patchcore": {"levels": (2, 3), "coreset_ratio": 0.1, "projection_eps": 0.9,
                  "memory": "growing", "memory_budget": None, "sigma": 4.0},
}


@pytest.mark.parametrize("name", sorted(OPTION_SPEC_DEFAULTS))
def test_model_defaults_are_the_old_defaults_and_the_constructors(name: str) -> None:
    defaults = default_options(name)
    assert defaults == OPTION_SPEC_DEFAULTS[name]
    assert validate_options(name, {}) == defaults  # the builder receives every default
    signature = inspect.signature(get_detector(name).builder).parameters
    assert {key: signature[key].default for key in defaults} == defaults
    assert set(DETECTOR_OPTIONS[name]) == set(defaults)


def test_every_builtin_option_has_a_description() -> None:
    for name in OPTION_SPEC_DEFAULTS:
        assert all(info.description for info in get_detector(name).option_fields.values()), name


@pytest.mark.parametrize(("method", "options", "message"), [
    ("patchcore", {"coreset_ratio": 1.5},
     r"model\.options\.patchcore\.coreset_ratio=1\.5: must be <= 1; allowed: a number > 0 and "
     r"<= 1 \(share of a task's patch features kept"),
    ("patchcore", {"coreset_ratio": 0}, r"patchcore\.coreset_ratio=0: must be > 0"),
    ("patchcore", {"levels": [0, 2]}, r"patchcore\.levels=\[0, 2\]: must be >= 1; allowed: a "
     r"list of 2 items, each an integer >= 1 and <= 3"),
    ("patchcore", {"levels": [3, 2]}, r"model\.options\.patchcore: levels=\[3, 2\]: must be two "
     r"increasing teacher levels"),
    ("patchcore", {"memory": "budget"}, r"memory: budget needs memory_budget"),
    ("patchcore", {"memory_budget": 10}, r"memory_budget applies to memory: budget only"),
    ("patchcore", {"projection_eps": 1.0}, r"projection_eps=1\.0: must be < 1"),
    ("hybrid", {"sigma": -1}, r"hybrid\.sigma=-1: must be >= 0"),
    ("hybrid", {"sigma": True}, r"hybrid\.sigma=True: must be a number, not true/false"),
    ("hybrid", {"fusion_alpha": 2}, r"hybrid\.fusion_alpha=2: must be <= 1"),
    ("hybrid", {"fixed_lambda": -0.1}, r"hybrid\.fixed_lambda=-0\.1: must be >= 0"),
    ("hybrid", {"dwa_temperature": 0}, r"hybrid\.dwa_temperature=0: must be > 0"),
    ("hybrid", {"student_blocks": [1, 2]}, r"hybrid\.student_blocks=\[1, 2\]: has too few items"),
    ("hybrid", {"student_stem": 2.5}, r"hybrid\.student_stem=2\.5: must be a valid integer"),
    ("hybrid", {"weighting": "equal"}, r"hybrid\.weighting='equal': must be one of "
     r"'fixed', 'uncertainty' or 'dwa'"),
    ("rd4ad", {"loss": "l2"}, r"rd4ad\.loss='l2'.*allowed: one of 'flat', 'pixel'"),
    ("rd4ad", {"ocbe_blocks": 0}, r"rd4ad\.ocbe_blocks=0: must be >= 1"),
    ("rd4ad", {"ocbe_width": 0}, r"rd4ad\.ocbe_width=0: must be > 0; allowed: a number > 0, "
     r"or null"),
    ("stpm", {"colour": 1}, r"model\.options\.stpm\.colour: detector 'stpm' has no option "
     r"'colour'; its options are sigma"),
])
def test_a_bad_option_is_refused_when_the_config_is_checked(method, options, message) -> None:
    raw = {"model": {"methods": [method], "options": {method: options}}}
    with pytest.raises(ConfigError, match=message):
        validate(raw)


def test_good_options_are_converted() -> None:
    checked = validate_options("patchcore", {"levels": [1, 3], "memory": "budget",
                                             "memory_budget": 2000, "projection_eps": None})
    assert checked["levels"] == (1, 3) and checked["memory_budget"] == 2000
    assert checked["projection_eps"] is None and checked["coreset_ratio"] == 0.1
    assert validate_options("hybrid", {"student_planes": [8, 16, 32]})["student_planes"] == (
        8, 16, 32)


def test_build_detector_names_the_option() -> None:
    from strategies.detectors import build_detector

    with pytest.raises(DetectorOptionError,
                       match=r"detector option patchcore\.coreset_ratio=2: must be <= 1"):
        build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=2)


def test_builtins_are_listed_in_registration_order() -> None:
    assert detector_names()[:4] == ["stpm", "rd4ad", "hybrid", "patchcore"]
