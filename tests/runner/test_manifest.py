"""The typed manifest: the same JSON on disk, cells and steps changed through its methods."""

from __future__ import annotations

import json
from pathlib import Path

from cl_bench.manifest import Manifest

#: a manifest as earlier versions wrote it (abridged); it must load and save unchanged
OLD = {"status": "interrupted", "created": "2026-11-30T10:00:00+00:00", "run_id": "r1",
       "warnings": ["device auto: no CUDA device found, ran on the CPU"],
       "cells": {"stpm/seed0": {"completed_step": 1, "status": "running",
                                "trainable_parameters": 12}},
       "steps": [{"method": "stpm", "seed": 0, "step": s, "train_task": t, "train_s": 1.0}
                 for s, t in ((-1, ""), (0, "a"), (1, "b"))],
       "some_future_key": {"kept": True}}


def test_old_manifests_keep_their_json(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(OLD))
    manifest = Manifest.load(path)
    assert manifest.status == "interrupted"
    manifest.save()
    saved = json.loads(path.read_text())
    assert {k: v for k, v in saved.items() if k not in ("updated", "peak_memory_mb")} == OLD


def test_cells_and_steps(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(OLD))
    manifest = Manifest.load(path)
    assert manifest.start_cell("stpm/seed0")["completed_step"] == 1  # existing entry kept
    assert manifest.start_cell("rd4ad/seed0") == {"completed_step": -2, "status": "running"}
    manifest.drop_steps_after("stpm", 0, 0)
    assert [s["step"] for s in manifest.data["steps"]] == [-1, 0]
    manifest.add_step({"method": "stpm", "seed": 0, "step": 1, "train_task": "b"})
    on_disk = json.loads(path.read_text())
    assert [s["step"] for s in on_disk["steps"]] == [-1, 0, 1]
    assert on_disk["cells"]["rd4ad/seed0"]["completed_step"] == -2


def test_a_new_manifest_names_the_machine_and_torch_kernels(tmp_path: Path) -> None:
    """The last digits of a seed's results can differ between processors: the manifest says
    which processor and which torch CPU kernels made them (torch loaded, as in a run)."""
    import torch

    manifest = Manifest.create(tmp_path / "manifest.json", run_id="r2")
    machine = json.loads((tmp_path / "manifest.json").read_text())["machine"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["cpu_count"] >= 1 and machine["machine"]
    assert "processor" in machine and manifest.data["machine"] == machine
