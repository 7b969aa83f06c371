"""Routing with a gradient-free detector (PatchCore): each expert holds its own task's memory
bank only (what an independent run on that task alone holds), not the cumulative bank, and the
manifest gives the experts' total memory next to the per-task figure."""

from __future__ import annotations

import json

import pytest
import torch
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


def _raw(strategy: str, **overrides) -> dict:
    # 64 px: level 2 (stride 8) has 8 x 8 patches; 8 training images -> 512 patches per task
    return tiny_raw(**{"strategy.name": strategy, "model.methods": ["patchcore"],
                       "model.weights": "imagenet",
                       "data.synthetic": {"categories": 3, "train": 8, "test": 8, "size": 64},
                       "data.image_size": 64, **overrides})


def _run(tmp_path, strategy: str, **overrides):
    return run_experiment(validate(_raw(strategy, **overrides)), out_root=tmp_path / strategy,
                          log=lambda _: None, progress=False)


def _steps(run) -> list[dict]:
    return [s for s in json.loads((run / "manifest.json").read_text())["steps"] if s["step"] >= 0]


@pytest.mark.parametrize("init", ["warm", "fresh"])
def test_each_expert_holds_its_own_task_bank_only(tmp_path, synthetic_cache, init) -> None:
    routing = _run(tmp_path, "routing", **{"strategy.routing": {"init": init}})
    independent = _run(tmp_path, "independent")  # each task's detector fitted on it alone
    alone = [int(torch.load(next(independent.rglob(f"step{t:02d}.pt")), weights_only=False)
                 ["state_dict"]["memory_bank"].shape[0]) for t in range(3)]
    assert alone == [51, 51, 51]  # floor(0.1 * 512) per task
    checkpoint = torch.load(next(routing.rglob("step02.pt")), weights_only=False)
    (state,) = [p for p in checkpoint["extra"]["plugins"] if isinstance(p, dict)
                and "experts" in p]
    banks = [int(e["memory_bank"].shape[0]) for e in state["experts"]]
    assert banks == alone  # cumulative banks would be [51, 102, 153]
    last = _steps(routing)[-1]
    per_expert = last["routing_expert_memory_mb"]
    assert len(per_expert) == 3 and max(per_expert) - min(per_expert) < 1e-3
    assert last["routing_memory_mb_total"] == pytest.approx(sum(per_expert), abs=1e-3)
    assert last["routing_memory_mb_per_task"] == pytest.approx(
        last["routing_memory_mb_total"] / 3, abs=1e-3)


def test_cumulative_memory_is_an_explicit_choice(tmp_path, synthetic_cache) -> None:
    routing = _run(tmp_path, "routing", **{"strategy.routing": {
        "init": "warm", "gradient_free_memory": "cumulative"}})
    checkpoint = torch.load(next(routing.rglob("step02.pt")), weights_only=False)
    (state,) = [p for p in checkpoint["extra"]["plugins"] if isinstance(p, dict)
                and "experts" in p]
    assert [int(e["memory_bank"].shape[0]) for e in state["experts"]] == [51, 102, 153]
