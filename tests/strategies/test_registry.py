"""The strategy registry: lookup, registration errors, and the config sections it defines."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from pydantic import Field

from cl_bench.config import apply_overrides, to_yaml, validate
from cl_bench.errors import ConfigError
from strategies.continual.plugins import load_plugin_state, plugin_state
from strategies.continual.registry import (
    StrategyOptions,
    StrategySpec,
    get_strategy,
    register_strategy,
    strategy_names,
)
from strategies.errors import StrategyRegistryError

BUILT_IN = ["naive", "replay", "ewc", "si", "feature_distillation", "routing", "joint",
            "independent", "cumulative", "mas", "agem"]


class ToyOptions(StrategyOptions):
    strength: float = Field(2.0, ge=0)


class ToyPlugin(SupervisedPlugin):
    def __init__(self, strength: float, seed: int) -> None:
        super().__init__()
        self.strength, self.seed = strength, seed


TOY = StrategySpec(name="toy", description="a test strategy", options=ToyOptions,
                   make_plugins=lambda options, seed: [ToyPlugin(options.strength, seed)],
                   source="tests.strategies.test_registry")


def test_built_ins_are_registered_in_order() -> None:
    assert strategy_names()[: len(BUILT_IN)] == BUILT_IN
    assert get_strategy("joint").stream == "joint"
    assert get_strategy("independent").stream == "per_task"
    assert get_strategy("independent").task_aware
    assert not any(get_strategy(n).task_aware for n in BUILT_IN if n != "independent")
    assert get_strategy("naive").build_plugins(None, 0) == []


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(StrategyRegistryError, match="unknown strategy 'gem'") as info:
        get_strategy("gem")
    assert all(name in str(info.value) for name in BUILT_IN)


def test_duplicate_registration_names_both_sources(scratch_registry) -> None:
    register_strategy(TOY)
    again = StrategySpec(name="toy", description="another", source="other_pkg:SPEC")
    with pytest.raises(StrategyRegistryError) as info:
        register_strategy(again)
    assert "tests.strategies.test_registry" in str(info.value)
    assert "other_pkg:SPEC" in str(info.value)
    assert get_strategy("toy") is TOY  # the first one stays
    register_strategy(again, replace=True)
    assert get_strategy("toy") is again


def test_a_built_in_cannot_be_replaced_by_accident(scratch_registry) -> None:
    with pytest.raises(StrategyRegistryError, match="by cl-bench"):
        register_strategy(StrategySpec(name="ewc", description="x", source="my_pkg"))


def test_spec_rejects_bad_declarations() -> None:
    with pytest.raises(ValueError, match="stream kind"):
        StrategySpec(name="x", description="x", stream="parallel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        StrategySpec(name="My Strategy", description="x")
    with pytest.raises(ValueError, match="cannot be a strategy name"):
        StrategySpec(name="options", description="x")
    with pytest.raises(TypeError, match="pydantic"):
        StrategySpec(name="x", description="x", options=dict)  # type: ignore[arg-type]


def test_registered_strategy_gets_its_config_section(scratch_registry) -> None:
    register_strategy(TOY)
    cfg = validate({"strategy": {"name": "toy", "toy": {"strength": 0.5}}})
    assert cfg.strategy.options() == ToyOptions(strength=0.5)
    plugins = cfg.strategy.spec().build_plugins(cfg.strategy.options(), 7)
    assert [(p.strength, p.seed) for p in plugins] == [(0.5, 7)]
    assert "toy:\n    strength: 0.5" in to_yaml(cfg)
    # --set reaches the section; defaults fill it when absent
    raw = apply_overrides({"strategy": {"name": "toy"}}, ["strategy.toy.strength=3"])
    assert validate(raw).strategy.toy.strength == 3.0
    assert validate({}).strategy.toy.strength == 2.0
    with pytest.raises(ConfigError, match=r"strategy\.toy\.strenght: unknown key.*strength"):
        validate({"strategy": {"toy": {"strenght": 1}}})
    with pytest.raises(ConfigError, match=r"strategy\.toy\.strength"):
        validate({"strategy": {"toy": {"strength": -1}}})


def test_config_without_the_strategy_has_no_section(scratch_registry) -> None:
    register_strategy(TOY)
    validate({"strategy": {"toy": {}}})
    scratch_registry._specs.pop("toy")
    scratch_registry._version += 1
    with pytest.raises(ConfigError, match=r"strategy\.toy: unknown key"):
        validate({"strategy": {"toy": {}}})
    with pytest.raises(ConfigError, match=r"strategy\.name: unknown strategy 'toy'; known: "
                                          r"naive, replay"):
        validate({"strategy": {"name": "toy"}})


def test_existing_option_keys_keep_working() -> None:
    raw = apply_overrides({"strategy": {"name": "ewc"}}, ["strategy.ewc.ewc_lambda=5"])
    cfg = validate(raw)
    assert cfg.strategy.options().ewc_lambda == 5.0
    text = to_yaml(cfg)
    sections = [line.strip() for line in text.split("strategy:\n", 1)[1].splitlines()
                if line.startswith("  ") and not line.startswith("    ")]
    assert "per_method: {}" in sections  # strategy.per_method, empty unless given
    sections.remove("per_method: {}")
    assert sections[:5] == ["name: ewc", "replay:", "ewc:", "si:", "feature_distillation:"]
    assert validate(cfg.model_dump(mode="json")) == cfg  # config.yaml reads back


def test_ewc_state_round_trips_weights_only(tmp_path) -> None:
    """EWC's importances and saved parameters survive a weights_only save and load."""
    from avalanche.training.utils import ParamData

    cfg = validate({"strategy": {"name": "ewc"}})
    [plugin] = cfg.strategy.spec().build_plugins(cfg.strategy.options(), 0)
    weight = torch.arange(4.0).reshape(2, 2)
    plugin.saved_params[0] = {"w": ParamData("w", init_tensor=weight)}
    plugin.importances[0] = {"w": ParamData("w", init_tensor=weight * 2)}
    torch.save(plugin_state(plugin), tmp_path / "s.pt")
    [fresh] = cfg.strategy.spec().build_plugins(cfg.strategy.options(), 0)
    load_plugin_state(fresh, torch.load(tmp_path / "s.pt", weights_only=True),
                      SimpleNamespace(device="cpu"))
    torch.testing.assert_close(fresh.importances[0]["w"].data, weight * 2)
    torch.testing.assert_close(fresh.saved_params[0]["w"].data, weight)


def test_state_for_a_plugin_without_load_state_dict_is_an_error() -> None:
    with pytest.raises(ValueError, match="ToyPlugin has no load_state_dict"):
        load_plugin_state(ToyPlugin(1.0, 0), {"x": torch.zeros(1)}, SimpleNamespace(device="cpu"))
    assert plugin_state(ToyPlugin(1.0, 0)) == {}
