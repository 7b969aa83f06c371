"""End-to-end runs on a tiny synthetic sequence: every strategy with every detector."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from cl_bench.errors import RunError
from cl_bench.records import SIDE_METRICS
from cl_bench.run.experiment import run_experiment
from strategies.continual.registry import get_strategy, strategy_names
from strategies.detectors import build_detector
from strategies.training.checkpoint import load_detector_state

DETECTORS = ("stpm", "rd4ad", "hybrid")


def _run(cfg, tmp_path):
    return run_experiment(cfg, out_root=tmp_path / "results", log=lambda _: None, progress=False)


@pytest.mark.parametrize("strategy", strategy_names())
def test_every_strategy_runs_with_every_detector(strategy, tiny_config, tmp_path) -> None:
    cfg = tiny_config(**{"strategy.name": strategy, "model.methods": list(DETECTORS)})
    run_dir = _run(cfg, tmp_path)
    records = pd.read_csv(run_dir / "records.csv")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    # how the report names and colours the detectors, without importing them
    assert [d["name"] for d in manifest["detectors"]][:4] == ["stpm", "rd4ad", "hybrid",
                                                              "patchcore"]
    assert all(d["color"].startswith("#") for d in manifest["detectors"])
    assert set(records["method"]) == set(DETECTORS)
    assert set(records["strategy"]) == {strategy}
    assert records["task_aware"].all() == get_strategy(strategy).task_aware
    per_task = records[records["eval_task"] != "pooled"]
    steps = sorted(per_task["step"].unique())
    assert steps == ([-1, 1] if get_strategy(strategy).stream == "joint" else [-1, 0, 1])
    final = per_task[(per_task["step"] == 1) & (per_task["metric"] == "pixel_auroc")]
    assert sorted(final["eval_index"]) == [0, 0, 0, 1, 1, 1]
    assert final["value"].between(0, 1).all()
    pooled = records[(records["eval_task"] == "pooled") & (records["step"] == 1)]
    # plus, for a strategy that records them (routing), task-ID accuracy and memory
    assert set(pooled["metric"]) - set(SIDE_METRICS) == {"image_auroc", "image_ap"}
    for method in DETECTORS:
        maps = np.load(run_dir / "maps" / f"{method}__{strategy}__seed0.npz")
        assert maps["maps"].shape[1:] == (32, 32) and maps["images"].dtype == np.uint8
        assert set(maps["tasks"]) == set(manifest["categories"])


def test_full_matrix_and_checkpoints_hold_students_only(tiny_config, tmp_path) -> None:
    cfg = tiny_config(**{"model.methods": ["hybrid"]})
    run_dir = _run(cfg, tmp_path)
    records = pd.read_csv(run_dir / "records.csv")
    matrix = records[(records["metric"] == "au_pro") & (records["eval_task"] != "pooled")]
    assert len(matrix) == 3 * 2  # rows -1, 0, 1 x two tasks
    ckpt = run_dir / "checkpoints" / "hybrid" / "seed0" / "step01.pt"
    state = torch.load(ckpt, weights_only=True)
    detector = build_detector("hybrid", backbone="efficientnet_lite0", weights="none",
                              **cfg.model.options["hybrid"])
    teacher_keys = {f"teacher.{k}" for k in detector.teacher.state_dict()}
    flat = json.dumps(list(state)) + json.dumps(list(state.get("state_dict", state)))
    assert not any(k in flat for k in teacher_keys)
    extra = load_detector_state(detector, ckpt)
    assert extra["step"] == 1


def test_same_seed_same_records(tiny_config, tmp_path) -> None:
    cfg = tiny_config(**{"model.methods": ["rd4ad"], "strategy.name": "replay"})
    a = pd.read_csv(_run(cfg, tmp_path / "a") / "records.csv").drop(columns="run_id")
    b = pd.read_csv(_run(cfg, tmp_path / "b") / "records.csv").drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_resume_of_complete_run_is_refused(tiny_config, tmp_path) -> None:
    run_dir = _run(tiny_config(), tmp_path)
    with pytest.raises(RunError, match="already complete"):
        run_experiment(None, resume=run_dir, log=lambda _: None)


def test_resume_of_foreign_folder_names_missing_file(tmp_path) -> None:
    with pytest.raises(RunError, match=r"config\.yaml is missing"):
        run_experiment(None, resume=tmp_path, log=lambda _: None)
