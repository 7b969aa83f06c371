"""Runs of one (method, strategy, seed, order) that differ in a setting are variants, each
labelled by that setting; equal settings stay a duplicate (an error naming both folders)."""

from __future__ import annotations

import pytest
import yaml
from report_fabricate import write_run

from cl_bench.errors import DataError
from cl_bench.report.build import compute
from cl_bench.report.variants import base_strategy, label_variants, run_settings


def _set_strategy(run_dir, name: str, section: dict, per_method: dict | None = None) -> None:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["strategy"] = {"name": name, name: section, "ewc": {"ewc_lambda": 7.0},
                          **({"per_method": per_method} if per_method else {})}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))


def test_a_strength_sweep_is_one_row_per_value(tmp_path) -> None:
    root = tmp_path / "tuning_si"
    for seed in (0, 1):
        for value in (0.1, 10.0):
            run = write_run(root, f"si-{value}-{seed}", "stpm", seed, strategy="si")
            _set_strategy(run, "si", {"si_lambda": value, "xi": 0.001})
    data = compute([root], ["image_auroc"])
    labels = sorted(set(data.summary["strategy"]))
    assert labels == ["si [si_lambda=0.1]", "si [si_lambda=10]"]
    assert all(n == 2 for n in data.per_run.groupby("strategy")["run_id"].nunique())
    assert any("differ in strategy.options.stpm.si_lambda" in note for note in data.notes)


def test_equal_settings_stay_a_duplicate(tmp_path) -> None:
    root = tmp_path / "twice"
    for name in ("first", "second"):
        run = write_run(root, name, "stpm", 0, strategy="si")
        _set_strategy(run, "si", {"si_lambda": 1.0, "xi": 0.001})
    with pytest.raises(DataError, match="stpm/si seed 0 order alphabetical is in several run"):
        compute([root], ["image_auroc"])


def test_what_cannot_change_the_run_is_not_a_difference() -> None:
    def config(ewc_lambda: float, si_override: float | None, epochs: int = 1) -> dict:
        per_method = {"rd4ad": {"si": {"si_lambda": 5.0}}}
        if si_override is not None:
            per_method["stpm"] = {"si": {"si_lambda": si_override}}
        return {"experiment": "x", "seeds": [0], "model": {"methods": ["stpm", "rd4ad"]},
                "train": {"epochs": epochs},
                "strategy": {"name": "si", "si": {"si_lambda": 1.0},
                             "ewc": {"ewc_lambda": ewc_lambda}, "per_method": per_method}}

    # another strategy's section and another detector's override: not a difference
    assert run_settings(config(1.0, None), "stpm") == run_settings(config(9.0, None), "stpm")
    # this detector's override is, and equals the same value written shared
    assert run_settings(config(1.0, 3.0), "stpm") != run_settings(config(1.0, None), "stpm")
    assert run_settings(config(1.0, 1.0), "stpm") == run_settings(config(1.0, None), "stpm")
    # a shared training setting is
    assert run_settings(config(1.0, None, 2), "stpm") != run_settings(config(1.0, None), "stpm")


def test_labels_keep_the_registered_strategy() -> None:
    assert base_strategy("ewc [ewc_lambda=10]") == "ewc"
    assert base_strategy("naive") == "naive"


def test_no_duplicates_no_relabelling(tmp_path) -> None:
    import pandas as pd

    df = pd.DataFrame({"method": ["stpm", "stpm"], "strategy": ["si", "si"], "seed": [0, 1],
                       "order": ["a", "a"], "run_dir": ["r0", "r1"]})
    configs = {"r0": {"strategy": {"name": "si", "si": {"si_lambda": 1.0}}},
               "r1": {"strategy": {"name": "si", "si": {"si_lambda": 2.0}}}}
    out, notes = label_variants(df, configs)
    assert list(out["strategy"]) == ["si", "si"] and notes == []
