"""A strategy acting in the gradient loop paired with a gradient-free detector (PatchCore) is
refused when the configuration is checked: exit 2, one message naming both, and no run folder
(``cl-bench run``) or no cell run (``cl-bench sweep``, at plan time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from runner_helpers import tiny_raw

from cl_bench.cli import main
from cl_bench.config import validate
from cl_bench.errors import ConfigError


def patchcore_raw(strategy: str) -> dict:
    return tiny_raw(**{"model.methods": ["stpm", "patchcore"], "strategy.name": strategy})


def test_validation_refuses_ewc_with_patchcore_and_names_both() -> None:
    with pytest.raises(ConfigError) as error:
        validate(patchcore_raw("ewc"))
    message = str(error.value)
    assert "'ewc' acts in the gradient loop" in message and "'patchcore'" in message
    assert "naive" in message and "replay" in message and "ewc," not in message  # what fits
    validate(patchcore_raw("replay"))  # replay only swaps the dataloader: accepted


def test_run_refuses_before_a_run_folder_exists(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(patchcore_raw("si")))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert "'si' acts in the gradient loop" in message and "--resume" not in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_sweep_refuses_at_plan_time(tmp_path: Path, capsys) -> None:
    raw = patchcore_raw("naive")
    raw["grid"] = {"strategy.name": ["naive", "ewc"]}
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out")]) == 2
    assert "'ewc' acts in the gradient loop" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
