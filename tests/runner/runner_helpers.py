"""Tiny synthetic experiments for runner tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def tiny_raw(**overrides) -> dict:
    """Two synthetic tasks of 4 train / 4 test images at 32 px, one epoch: seconds per cell."""
    raw = {
        "experiment": "tiny",
        "data": {"synthetic": {"categories": 2, "train": 4, "test": 4, "size": 32},
                 "image_size": 32},
        "model": {"methods": ["stpm"], "backbone": "efficientnet_lite0", "weights": "none",
                  "options": {"hybrid": {"student_width": 16, "student_blocks": [1, 1, 1]}}},
        # Adam and a constant rate for every detector, as these tests were written for (the
        # registered paper defaults, STPM's SGD and the hybrid's warm-up, are covered by
        # tests/runner/test_paper_defaults.py)
        "train": {"epochs": 1, "batch_size": 4,
                  "optimizer": {"name": "adam", "lr": 0.005, "betas": [0.5, 0.999]},
                  "schedule": {"name": "constant"}},
        "eval": {"batch_size": 8, "saved_maps_per_task": 2},
        "strategy": {"replay": {"buffer_size": 4}},
    }
    for key, value in overrides.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw


def resume_cut_copy(full: Path, where: Path, cell: str, done: int) -> Path:
    """A copy of the complete run ``full`` under ``where`` that pretends the process died after
    step ``done`` of ``cell`` (``<method>/seed<s>``), resumed to the end; returns the copy."""
    from cl_bench.run.experiment import run_experiment

    copy = where / f"cut{done}" / full.name
    shutil.copytree(full, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["cells"][cell].update(status="running", completed_step=done)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    run_experiment(None, resume=copy, log=lambda _: None, progress=False)
    return copy
