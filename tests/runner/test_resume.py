"""Kill a run with SIGKILL mid-way, resume it, and get the records of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


def _wait_for_step(run_root: Path, proc: subprocess.Popen, timeout: float = 600) -> Path:
    """The run folder, once its first cell has completed step 0 (the kill lands in step 1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for manifest in run_root.glob("*/*/manifest.json"):
            try:
                cells = json.loads(manifest.read_text()).get("cells", {})
            except ValueError:
                continue  # being replaced right now
            if any(c.get("completed_step", -2) >= 0 for c in cells.values()):
                return manifest.parent
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "run exited early"
        time.sleep(0.05)
    raise AssertionError("the run did not complete a step in time")


def test_sigkill_then_resume_gives_identical_records(tmp_path, synthetic_cache) -> None:
    # num_threads: the subprocesses and this one (tests/conftest.py) sum in the same order,
    # whatever OMP_NUM_THREADS the environment sets
    raw = tiny_raw(**{"model.methods": ["stpm", "hybrid"], "strategy.name": "ewc",
                      "data.synthetic.categories": 3, "num_threads": 2})
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CL_BENCH_CACHE": str(synthetic_cache), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cl_bench.cli", "run", str(config), "--out",
           str(tmp_path / "killed"), "--no-report"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    run_dir = _wait_for_step(tmp_path / "killed", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = json.loads((run_dir / "manifest.json").read_text())
    assert before["status"] == "running"  # killed: nothing had a chance to mark it

    resumed = subprocess.run([sys.executable, "-m", "cl_bench.cli", "run", "--resume",
                              str(run_dir), "--no-report"], env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"

    reference = run_experiment(validate(raw), out_root=tmp_path / "reference",
                               log=lambda _: None, progress=False)
    got = pd.read_csv(run_dir / "records.csv", dtype=str).drop(columns="run_id")
    want = pd.read_csv(reference / "records.csv", dtype=str).drop(columns="run_id")
    pd.testing.assert_frame_equal(got, want)  # as text: identical to the last digit


def test_resume_after_each_step_with_kept_optimizer_state(tmp_path, synthetic_cache) -> None:
    """In process: pretend the run died after step 0 and again after step 1 (replay buffer,
    SI importances and Adam state carried over tasks must all be restored)."""

    from strategies.training.checkpoint import read_checkpoint

    # two epochs: SI's penalty (0 at the first step of a task) acts from the second step on
    raw = tiny_raw(**{"model.methods": ["rd4ad"], "strategy.name": "si", "train.epochs": 2,
                      "train.reset_optimizer": False, "data.synthetic.categories": 3})
    full = run_experiment(validate(raw), out_root=tmp_path / "full", log=lambda _: None,
                          progress=False)
    for done in (0, 1):  # what a resume restores: non-zero importances
        path = full / "checkpoints" / "rd4ad" / "seed0" / f"step{done:02d}.pt"
        omega = read_checkpoint(path)["extra"]["plugins"][0]["omega"]
        assert omega and sum(float(t.abs().sum()) for t in omega.values()) > 0
    for done in (0, 1):
        copy = resume_cut_copy(full, tmp_path, "rd4ad/seed0", done)
        got = pd.read_csv(copy / "records.csv", dtype=str)
        want = pd.read_csv(full / "records.csv", dtype=str)
        pd.testing.assert_frame_equal(got, want)


def _fake_run(run_dir: Path, raw: dict, digest: bool = True) -> None:
    """A run folder before its first step; ``digest=False``: as versions that recorded no
    configuration digest left it."""
    from cl_bench.manifest import Manifest
    from cl_bench.run.digest import config_digest

    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(raw))
    (run_dir / "records.csv").write_text("")
    recorded = {"config_digest": config_digest(raw), "config_at_start": raw} if digest else {}
    Manifest.create(run_dir / "manifest.json", run_id="r", experiment="tiny", **recorded)


def test_resume_keeps_the_optimizer_of_a_run_written_before_fused_existed(tmp_path) -> None:
    """A config saved before ``train.optimizer.fused`` existed resumes with foreach Adam (what
    its version ran), says so and records it, instead of switching to the new default."""
    from cl_bench.config import to_yaml
    from cl_bench.run.experiment import load_run_for_resume

    old = yaml.safe_load(to_yaml(validate(tiny_raw())))
    del old["train"]["optimizer"]["fused"]
    _fake_run(tmp_path / "old", old)
    said: list[str] = []
    cfg, manifest = load_run_for_resume(tmp_path / "old", said.append)
    assert cfg.train.optimizer.fused is False
    assert any("train.optimizer.fused=False" in line for line in said)
    assert any("train.optimizer.fused=False" in w for w in manifest.data["warnings"])

    new = yaml.safe_load(to_yaml(validate(tiny_raw())))
    _fake_run(tmp_path / "new", new)
    said.clear()
    cfg, manifest = load_run_for_resume(tmp_path / "new", said.append)
    assert cfg.train.optimizer.fused is True and not said and not manifest.data["warnings"]


@pytest.mark.parametrize("name", ["naive", "si", "feature_distillation"])
def test_resume_of_a_run_written_before_si_was_reimplemented(tmp_path, name) -> None:
    """Every config saved before the SI re-implementation holds ``strategy.si.eps``: a naive run
    resumes (the key is renamed to ``xi`` and said), an SI or feature-distillation run, whose
    regulariser changed, is refused with a message instead of resuming under another one."""
    from cl_bench.config import to_yaml
    from cl_bench.errors import RunError
    from cl_bench.run.experiment import load_run_for_resume

    old = yaml.safe_load(to_yaml(validate(tiny_raw())))
    old["strategy"]["name"] = name
    old["strategy"]["si"] = {"si_lambda": 1.0, "eps": 0.001}
    _fake_run(tmp_path / "old", old)
    said: list[str] = []
    if name == "naive":
        cfg, _ = load_run_for_resume(tmp_path / "old", said.append)
        assert cfg.strategy.si.xi == 0.001
        assert any("strategy.si.eps" in line for line in said)
    else:
        with pytest.raises(RunError, match="re-implemented"):
            load_run_for_resume(tmp_path / "old", said.append)


def test_keep_checkpoints_last_keeps_one_per_cell_and_the_same_records(
        tmp_path, synthetic_cache) -> None:
    """``performance.keep_checkpoints: last``: the routing strategy (one expert per task) keeps
    only the last step's checkpoint, and records exactly what ``all`` records."""
    runs = {}
    for keep in ("all", "last"):
        raw = tiny_raw(**{"model.methods": ["rd4ad"], "strategy.name": "routing",
                          "data.synthetic.categories": 3, "eval.saved_maps_per_task": 0,
                          "performance.keep_checkpoints": keep})
        runs[keep] = run_experiment(validate(raw), out_root=tmp_path / keep,
                                    log=lambda _: None, progress=False)
    kept = {keep: sorted(p.name for p in (run / "checkpoints" / "rd4ad" / "seed0").iterdir())
            for keep, run in runs.items()}
    assert kept == {"all": ["step00.pt", "step01.pt", "step02.pt"], "last": ["step02.pt"]}
    got = pd.read_csv(runs["last"] / "records.csv", dtype=str).drop(columns="run_id")
    want = pd.read_csv(runs["all"] / "records.csv", dtype=str).drop(columns="run_id")
    pd.testing.assert_frame_equal(got, want)
