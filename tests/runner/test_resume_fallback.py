"""Resume falls back to the last intact checkpoint; run files are as readable as the umask says."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """An uninterrupted tiny run over three tasks (EWC: state carried between tasks)."""
    import torch

    base = tmp_path_factory.mktemp("fallback")
    os.environ["CL_BENCH_CACHE"] = str(base / "cache")
    torch.set_num_threads(2)  # as the tests that resume it (tests/conftest.py): same sums
    raw = tiny_raw(**{"strategy.name": "ewc", "data.synthetic.categories": 3})
    return run_experiment(validate(raw), out_root=base / "full", log=lambda _: None,
                          progress=False)


def _cut_after(full: Path, dest: Path, done: int) -> Path:
    """A copy of ``full`` as a run killed after step ``done`` would have left it."""
    copy = dest / full.name
    shutil.copytree(full, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["cells"]["stpm/seed0"].update(status="running", completed_step=done)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("damage", ["deleted", "truncated", "both"])
def test_resume_falls_back_to_the_last_intact_checkpoint(full_run, tmp_path, damage) -> None:
    copy = _cut_after(full_run, tmp_path, done=1)
    checkpoints = copy / "checkpoints" / "stpm" / "seed0"
    step1 = checkpoints / "step01.pt"
    if damage == "deleted":
        step1.unlink()
    else:
        step1.write_bytes(step1.read_bytes()[:1000])
    if damage == "both":
        (checkpoints / "step00.pt").unlink()
    said: list[str] = []
    run_experiment(None, resume=copy, log=said.append, progress=False)

    want = pd.read_csv(full_run / "records.csv", dtype=str)
    got = pd.read_csv(copy / "records.csv", dtype=str)
    pd.testing.assert_frame_equal(got, want)  # retrained from the intact step: identical
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    expected = "the untrained model" if damage == "both" else "step 0"
    warning = [w for w in manifest["warnings"] if "step01.pt" in w]
    assert warning and f"continuing from {expected}" in warning[0]
    assert any("step01.pt" in line and "dropped" in line for line in said)  # on the console
    steps = [(s["step"]) for s in manifest["steps"]]
    assert steps == sorted(set(steps))  # timings of the dropped steps are not kept twice


def test_intact_checkpoint_needs_no_fallback(full_run, tmp_path) -> None:
    copy = _cut_after(full_run, tmp_path, done=1)
    said: list[str] = []
    run_experiment(None, resume=copy, log=said.append, progress=False)
    assert not any("dropped" in line and "step" in line and ".pt" in line for line in said)
    pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str),
                                  pd.read_csv(full_run / "records.csv", dtype=str))


def test_run_files_follow_the_umask(full_run) -> None:
    """Written under umask 022: every file of the run is 0644, like the report's files."""
    files = [p for p in full_run.rglob("*") if p.is_file() and not p.name.startswith(".lock")]
    names = {p.name for p in files}
    assert {"config.yaml", "manifest.json", "records.csv", "step00.pt"} <= names
    modes = {p.relative_to(full_run).as_posix(): oct(stat.S_IMODE(p.stat().st_mode))
             for p in files}
    wanted = oct(0o666 & ~_umask())
    assert all(mode == wanted for mode in modes.values()), modes


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_respects_the_umask(tmp_path, mask) -> None:
    from strategies.training.atomic import atomic_write

    old = os.umask(mask)
    try:
        path = atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary left


def test_checkpoint_message_points_to_the_fallback(tmp_path) -> None:
    from strategies.errors import CheckpointError
    from strategies.training.checkpoint import read_checkpoint

    path = tmp_path / "step00.pt"
    path.write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert "delete it" not in str(err.value) and "weights_only" not in str(err.value)
    assert "last intact checkpoint" in str(err.value)
