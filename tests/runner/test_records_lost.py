"""A run whose records.csv is lost is rebuilt from its checkpoints (issue #27, deliverable 8),
and the resume messages say what happened (friction list: dropped rows, keep_checkpoints last)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


@pytest.fixture(scope="module", params=["all", "last"])
def full_run(request, tmp_path_factory) -> Path:
    """A complete tiny EWC run over three tasks, keeping every checkpoint or the last only."""
    import os

    import torch

    base = tmp_path_factory.mktemp(f"keep_{request.param}")
    os.environ["CL_BENCH_CACHE"] = str(base / "cache")
    torch.set_num_threads(2)
    raw = tiny_raw(**{"strategy.name": "ewc", "data.synthetic.categories": 3,
                      "performance.keep_checkpoints": request.param})
    return run_experiment(validate(raw), out_root=base / "full", log=lambda _: None,
                          progress=False)


def _copy(full: Path, dest: Path) -> Path:
    copy = dest / full.name
    shutil.copytree(full, copy)
    return copy


def _resume(run_dir: Path) -> list[str]:
    said: list[str] = []
    run_experiment(None, resume=run_dir, log=said.append, progress=False)
    return said


def test_lost_records_are_rebuilt_identically(full_run, tmp_path) -> None:
    copy = _copy(full_run, tmp_path)
    (copy / "records.csv").unlink()
    said = _resume(copy)
    assert (copy / "records.csv").read_text() == (full_run / "records.csv").read_text()
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    warning = next(w for w in manifest["warnings"] if w.startswith("records.csv was missing"))
    if "keep_last" in str(full_run):  # steps 0 and 1 have no checkpoint: trained again
        assert "steps -1..-1 rebuilt, steps 0..2 trained again" in warning
        assert "deleted by design (performance.keep_checkpoints: last)" in warning
    else:
        assert "steps -1..2 rebuilt from checkpoints" in warning
        assert not any("trained again" in line for line in said)


def test_lost_records_of_an_interrupted_run(full_run, tmp_path) -> None:
    copy = _copy(full_run, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    manifest["cells"]["stpm/seed0"].update(status="running", completed_step=2)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "records.csv").unlink()
    _resume(copy)
    assert (copy / "records.csv").read_text() == (full_run / "records.csv").read_text()


def test_dropped_rows_of_completed_steps_are_not_called_incomplete(full_run, tmp_path) -> None:
    copy = _copy(full_run, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["cells"]["stpm/seed0"].update(status="running", completed_step=2)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    checkpoint = copy / "checkpoints" / "stpm" / "seed0" / "step02.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    said = "\n".join(_resume(copy))
    assert "of completed steps that are trained again" in said
    assert "had not completed" not in said
    if "keep_last" in str(full_run):
        assert "deleted by design after each step (performance.keep_checkpoints: last)" in said
        assert said.count("truncated or unreadable") == 1
    assert (copy / "records.csv").read_text() == (full_run / "records.csv").read_text()
