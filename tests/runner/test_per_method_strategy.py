"""``strategy.per_method``: one detector's strategy options replaced, validated by the strategy's
options model, used when the run builds that detector's plugins and written to the manifest."""

from __future__ import annotations

import json

import pytest
import yaml
from runner_helpers import tiny_raw

from cl_bench.config import ConfigError, to_yaml, validate
from cl_bench.run.experiment import run_experiment


def test_per_method_replaces_only_the_named_keys_for_that_detector() -> None:
    cfg = validate(tiny_raw(**{"strategy.name": "ewc",
                               "strategy.ewc": {"ewc_lambda": 100.0, "decay_factor": 0.8},
                               "strategy.per_method": {"stpm": {"ewc": {"ewc_lambda": 1.0}}}}))
    stpm, rd4ad = cfg.strategy.options_for("stpm"), cfg.strategy.options_for("rd4ad")
    assert (stpm.ewc_lambda, stpm.decay_factor) == (1.0, 0.8)
    assert (rd4ad.ewc_lambda, rd4ad.decay_factor) == (100.0, 0.8)
    assert validate(yaml.safe_load(to_yaml(cfg))) == cfg  # config.yaml reloads identically


def test_an_override_of_another_strategy_leaves_the_selected_one_alone() -> None:
    cfg = validate(tiny_raw(**{"strategy.name": "si",
                               "strategy.per_method": {"stpm": {"ewc": {"ewc_lambda": 1.0}}}}))
    assert cfg.strategy.options_for("stpm") == cfg.strategy.si


@pytest.mark.parametrize(("override", "message"), [
    ({"stpm": {"ewc": {"ewc_lambd": 1.0}}}, "strategy.per_method.stpm.ewc.ewc_lambd"),
    ({"stpm": {"ewc": {"ewc_lambda": -1.0}}}, "strategy.per_method.stpm.ewc.ewc_lambda"),
    ({"stpm": {"naive": {"x": 1}}}, "strategy 'naive' has no options"),
    ({"stpm": {"ewk": {"ewc_lambda": 1.0}}}, "ewk"),
    ({"stmp": {"ewc": {"ewc_lambda": 1.0}}}, "strategy.per_method.stmp: unknown method"),
])
def test_bad_entries_name_their_key_path(override, message) -> None:
    with pytest.raises(ConfigError) as info:
        validate(tiny_raw(**{"strategy.name": "ewc", "strategy.per_method": override}))
    assert message in str(info.value)


def test_a_run_uses_and_records_the_override(tmp_path) -> None:
    """Lambda 0 for stpm only: its EWC penalty is off, so its records equal naive's."""
    common = {"model.methods": ["stpm"], "train.epochs": 2}
    out = tmp_path / "results"
    naive = run_experiment(validate(tiny_raw(**common)), out_root=out, log=lambda _: None,
                           progress=False)
    off = run_experiment(validate(tiny_raw(**common, **{
        "strategy.name": "ewc", "strategy.ewc": {"ewc_lambda": 1.0e4},
        "strategy.per_method": {"stpm": {"ewc": {"ewc_lambda": 0.0}}}})),
        out_root=out, log=lambda _: None, progress=False)
    on = run_experiment(validate(tiny_raw(**common, **{
        "strategy.name": "ewc", "strategy.ewc": {"ewc_lambda": 1.0e4}})),
        out_root=out, log=lambda _: None, progress=False)

    def values(run_dir):
        text = (run_dir / "records.csv").read_text().splitlines()
        return [line.split(",")[-1] for line in text[1:]]

    assert values(off) == values(naive)
    assert values(on) != values(naive)
    cell = json.loads((off / "manifest.json").read_text())["cells"]
    assert next(iter(cell.values()))["strategy_options"]["ewc_lambda"] == 0.0
