"""Configuration validation: every bad key ends in one error naming the key path."""

from __future__ import annotations

import pytest

from cl_bench.config import apply_overrides, load_config, to_yaml, validate
from cl_bench.errors import ConfigError


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate(raw, source="test.yaml")
    return str(info.value)


def test_defaults_fill_every_section() -> None:
    cfg = validate({"experiment": "x"})
    assert cfg.train.epochs >= 1
    assert cfg.strategy.name == "naive"
    assert "au_pro" in cfg.eval.metrics
    assert "train:" in to_yaml(cfg)


def test_unknown_key_names_path_and_allowed_keys() -> None:
    msg = _error({"train": {"epoch": 3}})
    assert "train.epoch" in msg
    assert "epochs" in msg  # the allowed keys are listed


def test_wrong_type_names_path() -> None:
    msg = _error({"train": {"batch_size": "big"}})
    assert "train.batch_size" in msg
    assert "'big'" in msg


def test_out_of_range_value() -> None:
    msg = _error({"eval": {"pro_fpr_limit": 1.5}})
    assert "eval.pro_fpr_limit" in msg


def test_unknown_strategy_lists_allowed() -> None:
    msg = _error({"strategy": {"name": "gem"}})
    assert "strategy.name" in msg and "replay" in msg and "feature_distillation" in msg


def test_unknown_method_lists_allowed() -> None:
    msg = _error({"model": {"methods": ["hybrid", "padim"]}})
    assert "model.methods[1]" in msg and "stpm" in msg


def test_unknown_backbone_lists_allowed() -> None:
    msg = _error({"model": {"backbone": "vit"}})
    assert "model.backbone" in msg and "efficientnet_lite0" in msg


def test_unknown_detector_option() -> None:
    msg = _error({"model": {"options": {"stpm": {"no_such_option": 1}}}})
    assert "model.options.stpm.no_such_option" in msg


def test_folder_source_needs_root() -> None:
    msg = _error({"data": {"source": "folder"}})
    assert "data.root" in msg


def test_unknown_device() -> None:
    assert "device" in _error({"device": "tpu"})


def test_overrides_parse_yaml_values(tmp_path) -> None:
    raw = apply_overrides({"train": {"epochs": 5}},
                          ["train.epochs=2", "seeds=[0, 1]", "data.order=[b, a]"])
    assert raw == {"train": {"epochs": 2}, "seeds": [0, 1], "data": {"order": ["b", "a"]}}
    path = tmp_path / "c.yaml"
    path.write_text("experiment: t\ntrain:\n  epochs: 5\n")
    assert load_config(path, ["train.epochs=3"]).train.epochs == 3


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        apply_overrides({}, ["train.epochs"])


def test_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_detector_option_of_wrong_type() -> None:
    msg = _error({"model": {"options": {"hybrid": {"weighting": "magic"}}}})
    assert "model.options.hybrid" in msg and "magic" in msg
