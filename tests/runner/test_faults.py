"""Faults end in one clear error and keep everything already written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from cl_bench.errors import ConfigError
from cl_bench.runner import run_experiment
from strategies.detectors.base import LossResult
from strategies.detectors.stpm import STPM
from strategies.errors import DivergedError


def test_nan_loss_stops_with_task_and_epoch_and_keeps_records(tiny_config, tmp_path,
                                                              monkeypatch) -> None:
    original = STPM.compute_loss
    calls = {"n": 0}

    def diverging(self, output):
        calls["n"] += 1
        result = original(self, output)
        if calls["n"] > 1:  # task 0 trains (one batch); task 1 diverges
            return LossResult(result.total * float("nan"), result.parts)
        return result

    monkeypatch.setattr(STPM, "compute_loss", diverging)
    out = tmp_path / "results"
    with pytest.raises(DivergedError, match=r"task 1, epoch 1"):
        run_experiment(tiny_config(), out_root=out, log=lambda _: None, progress=False)
    run_dir = next(out.glob("tiny/*"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "DivergedError" in manifest["error"]
    records = pd.read_csv(run_dir / "records.csv")
    assert sorted(records["step"].unique()) == [-1, 0]  # what completed is kept
    assert (run_dir / "checkpoints" / "stpm" / "seed0" / "step00.pt").is_file()


def test_missing_data_root_names_the_key(synthetic_cache, tmp_path) -> None:
    from cl_bench.config import validate

    cfg = validate({"data": {"source": "folder", "root": str(tmp_path / "nowhere")},
                    "model": {"weights": "none"}})
    with pytest.raises(ConfigError, match=r"data\.root"):
        run_experiment(cfg, out_root=tmp_path / "results", log=lambda _: None)


def test_teacher_not_in_ewc_or_si_state(tiny_config, tmp_path) -> None:
    """EWC's importances and SI's data cover the students only (memory scales with them)."""
    from cl_bench.cell import build_strategy
    from cl_bench.runner import RunContext

    for name in ("ewc", "si"):
        cfg = tiny_config(**{"strategy.name": name, "model.methods": ["rd4ad"]})
        ctx = RunContext(cfg, tmp_path, "x", torch.device("cpu"), None, None, print, "a", [])
        strategy = build_strategy(ctx, "rd4ad", 0, progress=False)
        from cl_bench.data import build_benchmark, ensure_synthetic

        root = ensure_synthetic(n_categories=2, n_train=4, n_test=4, size=32)
        tasks = build_benchmark(root, image_size=32)
        strategy.train(tasks.benchmark.train_stream[0])
        plugin = strategy.plugins[0]
        state = plugin.importances[0] if name == "ewc" else plugin.omega
        keys = set(state)
        students = {n for n, _ in strategy.detector.named_parameters()}
        assert keys and keys <= students
        assert not any(k.startswith("teacher") for k in keys)
        stored = sum(t.data.numel() for t in state.values())
        assert stored <= strategy.detector.num_trainable_parameters()
