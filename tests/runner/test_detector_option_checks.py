"""A bad detector option is refused when the configuration is checked: ``cl-bench run`` and
``cl-bench sweep`` exit 2 with one message naming it, before any run folder exists."""

from __future__ import annotations

from pathlib import Path

import yaml
from runner_helpers import tiny_raw

from cl_bench.cli import main


def test_run_refuses_an_option_out_of_range_before_the_run_folder(tmp_path: Path,
                                                                  capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(tiny_raw(**{
        "model.methods": ["patchcore"], "model.options": {"patchcore": {"coreset_ratio": 1.5}}})))
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "model.options.patchcore.coreset_ratio=1.5: must be <= 1" in err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_run_refuses_an_option_of_the_wrong_type(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(tiny_raw(**{
        "model.options": {"stpm": {"sigma": "wide"}}})))
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    assert "model.options.stpm.sigma='wide': must be a valid number" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_sweep_refuses_a_bad_grid_value_before_its_first_cell(tmp_path: Path, capsys) -> None:
    raw = tiny_raw(**{"model.methods": ["patchcore"]})
    raw["grid"] = {"model.options.patchcore.coreset_ratio": [0.5, 1.5]}  # the 1st cell is good
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "model.options.patchcore.coreset_ratio=1.5: must be <= 1" in err
    assert "Traceback" not in err
    assert not list(out.glob("**/records.csv")) and not list(out.glob("**/manifest.json"))
