"""Grid expansion: cells, run ids, named orders, exclusions and the errors of bad sweep files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cl_bench.errors import ConfigError
from cl_bench.sweep import cell_run_id, sweep_from_dict
from cl_bench.sweep.grid import field_annotation

BASE = {"experiment": "unit", "model": {"methods": ["stpm"], "weights": "none"},
        "train": {"epochs": 1}}


def make(grid: dict, **extra) -> list:
    return sweep_from_dict({**BASE, **extra, "grid": grid}, source="unit.yaml").cells


def test_cartesian_product_with_scalars_wrapped_for_list_keys() -> None:
    cells = make({"model.methods": ["stpm", "rd4ad"], "strategy.name": ["naive", "replay", "ewc"],
                  "seeds": [0, 1]})
    assert len(cells) == 12
    first = cells[0]
    assert first.config["model"]["methods"] == ["stpm"]
    assert first.config["seeds"] == [0]
    assert first.config["strategy"]["name"] == "naive"
    assert first.config["train"] == {"epochs": 1}  # base kept
    assert len({c.run_id for c in cells}) == 12
    # lists of lists group values into one cell
    grouped = make({"seeds": [[0, 1], [2]]})
    assert [c.config["seeds"] for c in grouped] == [[0, 1], [2]]


def test_run_id_is_readable_deterministic_and_independent_of_key_order() -> None:
    a = make({"model.methods": ["hybrid"], "strategy.name": ["replay"], "seeds": [3],
              "data.order": ["random1"], "train.epochs": [2]})[0]
    b = make({"train.epochs": [2], "data.order": ["random1"], "seeds": [3],
              "strategy.name": ["replay"], "model.methods": ["hybrid"]})[0]
    assert a.run_id == b.run_id
    assert a.run_id.startswith("hybrid-replay-seed3-random1-epochs=2-")
    assert len(a.run_id.rsplit("-", 1)[1]) == 6
    assert cell_run_id({"seeds": [3]}) != cell_run_id({"seeds": [4]})


def test_named_orders_map_onto_config_fields() -> None:
    cells = {c.order: c for c in make({"data.order": ["alphabetical", "reversed", "random0",
                                                      "random7", ["b", "a"]]})}
    assert set(cells) == {"alphabetical", "reversed", "random0", "random7", "custom"}
    assert cells["random7"].config["data"]["order"] == "random"
    assert cells["random7"].config["data"]["order_seed"] == 7
    assert cells["reversed"].config["data"]["order"] == "reversed"  # resolved where it runs
    assert cells["custom"].config["data"]["order"] == ["b", "a"]
    # a named order in the base configuration (no order axis) works too
    (cell,) = make({"seeds": [0]}, data={"order": "random3"})
    assert cell.config["data"] == {"order": "random", "order_seed": 3}
    assert cell.order == "random3"


def test_exclude_drops_matching_cells() -> None:
    cells = make({"strategy.name": ["naive", "joint"], "data.order": ["alphabetical", "reversed"]},
                 exclude=[{"strategy.name": "joint", "data.order": "reversed"}])
    assert sorted((c.values["strategy.name"], c.order) for c in cells) == [
        ("joint", "alphabetical"), ("naive", "alphabetical"), ("naive", "reversed")]


def test_grid_override_replaces_an_axis() -> None:
    sweep = sweep_from_dict({**BASE, "grid": {"seeds": [0, 1, 2]}}, "unit.yaml",
                            overrides=["grid.seeds=[5]", "train.epochs=3"])
    assert [c.config["seeds"] for c in sweep.cells] == [[5]]
    assert sweep.cells[0].config["train"]["epochs"] == 3


@pytest.mark.parametrize(("grid", "message"), [
    ({"train.epoch": [1]}, "unknown key 'epoch' in train"),
    ({"train.epochs.x": [1]}, "train.epochs is a value"),
    ({"seeds": []}, "non-empty list"),
    ({"seeds": 3}, "non-empty list"),
    ({"seeds": [1, 1]}, "listed twice"),
    ({"experiment": ["a", "b"]}, "cannot be varied"),
    ({"data.order": ["backwards"]}, "unknown task order 'backwards'"),
    ({"train.epochs": [1, 0]}, "train.epochs"),
    ({"strategy.name": ["naive", "dreaming"]}, "unknown strategy 'dreaming'"),
])
def test_bad_grids_fail_before_anything_runs(grid: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(grid)


def test_missing_grid_and_bad_exclude() -> None:
    with pytest.raises(ConfigError, match="no 'grid:' mapping"):
        sweep_from_dict(dict(BASE), "unit.yaml")
    with pytest.raises(ConfigError, match="not a grid key"):
        make({"seeds": [0]}, exclude=[{"strategy.name": "naive"}])
    with pytest.raises(ConfigError, match="leaves no cell"):
        make({"seeds": [0]}, exclude=[{"seeds": 0}])


def test_free_form_option_keys_are_accepted() -> None:
    assert field_annotation("model.options.hybrid.weighting", "here") is None
    cells = make({"model.options.hybrid.weighting": ["fixed", "dwa"],
                  "model.methods": ["hybrid"]})
    assert [c.config["model"]["options"]["hybrid"]["weighting"] for c in cells] == ["fixed", "dwa"]
    assert cells[0].run_id.startswith("hybrid-weighting=fixed-")


def test_docs_sweeps_counts_match_the_example_file() -> None:
    """docs/sweeps.md quotes experiments/synthetic_sweep.yaml (24 cells) and its exclude
    example (20 cells): both numbers are what the grid expands to (issue #27)."""
    import re

    from cl_bench.sweep import load_sweep

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "sweeps.md").read_text()
    spec = load_sweep(root / "experiments" / "synthetic_sweep.yaml")
    assert not spec.exclude and len(spec.cells) == 24
    assert "list the 24 cells" in docs and "= 24 cells" in docs
    raw = yaml.safe_load((root / "experiments" / "synthetic_sweep.yaml").read_text())
    block = re.search(r"adding\n\n```yaml\n(exclude:.*?)```", docs, re.S)
    assert block, "the exclude example of docs/sweeps.md"
    raw.update(yaml.safe_load(block.group(1)))
    assert len(sweep_from_dict(raw, "docs").cells) == 20 and "leaving 20 cells" in docs
