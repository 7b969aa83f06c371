"""Faults end in one clear error and keep everything already written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from fault_helpers import cli, fake_run, snapshot, write_config

from cl_bench.errors import ConfigError
from cl_bench.run.experiment import run_experiment
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
        if calls["n"] > 1:  # the first task trains (one batch); the second diverges
            return LossResult(result.total * float("nan"), result.parts)
        return result

    monkeypatch.setattr(STPM, "compute_loss", diverging)
    out = tmp_path / "results"
    with pytest.raises(DivergedError, match=r"task 2, epoch 1"):
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
    from cl_bench.run.experiment import RunContext
    from cl_bench.run.steps import build_strategy

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


# ---- issue 14: every fault ends in one message, exit status 2, nothing written altered ----------
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_set_with_unclosed_bracket_is_one_message(command, capsys, tmp_path,
                                                  synthetic_cache) -> None:
    config = write_config(tmp_path / "tiny.yaml")
    if command == "sweep":
        config.write_text(config.read_text() + "grid:\n  seeds: [0, 1]\n")
    status, said = cli(capsys, command, str(config), "--set", "data.categories=[bottle",
                       "--out", str(tmp_path / "out"))
    assert status == 2
    assert "--set 'data.categories=[bottle'" in said and "not valid YAML" in said
    assert "[a,b]" in said  # how to fix
    assert "Traceback" not in said and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["data: [unclosed\n", "\xff\xfe binary", "- a list\n",
                                    "train: {epochs: -3}\n"])
def test_corrupt_config_on_resume_is_one_message_and_changes_nothing(damage, capsys, tmp_path,
                                                                     synthetic_cache) -> None:
    run_dir = fake_run(tmp_path / "tiny" / "run1")
    (run_dir / "config.yaml").write_bytes(damage.encode("latin-1"))
    before = snapshot(run_dir)
    status, said = cli(capsys, "run", "--resume", str(run_dir))
    assert status == 2 and "Traceback" not in said
    assert f"{run_dir / 'config.yaml'}" in said and "repair it by hand" in said
    assert snapshot(run_dir) == before  # not even a lock file


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_stops_before_the_run_folder(capsys, tmp_path,
                                                       synthetic_cache) -> None:
    config = write_config(tmp_path / "tiny.yaml", device="cuda")
    status, said = cli(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert status == 2 and "no CUDA device" in said and "device=cpu" in said
    assert not (tmp_path / "out").exists()  # no run folder left 'running'

    run_dir = fake_run(tmp_path / "tiny" / "run1", device="cuda")
    before = snapshot(run_dir)
    status, said = cli(capsys, "run", "--resume", str(run_dir))
    assert status == 2 and "no CUDA device" in said
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    assert {k: v for k, v in snapshot(run_dir).items() if not k.startswith(".lock")} == before


def test_garbage_weights_file_says_what_a_state_dict_is(capsys, tmp_path,
                                                        synthetic_cache) -> None:
    weights = tmp_path / "teacher.pth"
    weights.write_bytes(bytes(range(256)) * 40)
    config = write_config(tmp_path / "tiny.yaml")
    status, said = cli(capsys, "run", str(config), "--set", f"model.weights={weights}",
                       "--out", str(tmp_path / "out"))
    assert status == 2 and "Traceback" not in said
    assert str(weights) in said and "not a state dict" in said
    assert "torch.save(model.state_dict()" in said
    assert "weights_only=False" not in said and "weights_only` set to `False" not in said
    assert not (tmp_path / "out").exists()


def test_a_whole_pickled_model_is_named_as_such(tmp_path) -> None:
    from strategies.errors import WeightsError
    from strategies.teachers.backbones import build_teacher

    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError, match=r"whole model saved with torch.save\(model\)") as err:
        build_teacher("resnet18", path)
    assert "weights_only" not in str(err.value)


@pytest.mark.parametrize("override", ["data.categories=[nope]",
                                      "data.source=folder", "data.order=[nope,other]"])
def test_data_errors_stop_before_the_run_folder(override, capsys, tmp_path,
                                                synthetic_cache) -> None:
    config = write_config(tmp_path / "tiny.yaml")
    extra = ["--set", f"data.root={tmp_path / 'absent'}"] if "folder" in override else []
    status, said = cli(capsys, "run", str(config), "--set", override, *extra,
                       "--out", str(tmp_path / "out"))
    assert status == 2 and "Traceback" not in said
    assert not (tmp_path / "out").exists()


def test_failure_after_the_start_marks_failed_with_the_error(capsys, tmp_path, monkeypatch,
                                                             synthetic_cache) -> None:
    import errno

    import cl_bench.run.sequential

    def disk_full(ctx, strategy, method, seed, step):
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.run_dir / "x.pt"))

    save_step = cl_bench.run.sequential.save_step
    monkeypatch.setattr(cl_bench.run.sequential, "save_step", disk_full)
    config = write_config(tmp_path / "tiny.yaml")
    status, said = cli(capsys, "run", str(config), "--out", str(tmp_path / "out"),
                       "--progress", "off")
    assert status == 2 and "Traceback" not in said and "No space left on device" in said
    run_dir = next((tmp_path / "out" / "tiny").iterdir())
    assert f"cl-bench run --resume {run_dir}" in said
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "No space left on device" in manifest["error"]
    assert manifest["cells"]["stpm/seed0"]["status"] == "failed"  # not left 'running' (#25)
    assert sorted(pd.read_csv(run_dir / "records.csv")["step"].unique()) == [-1]
    monkeypatch.setattr(cl_bench.run.sequential, "save_step", save_step)  # space freed
    status, said = cli(capsys, "run", "--resume", str(run_dir), "--no-report", "--progress",
                       "off")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert status == 0 and manifest["cells"]["stpm/seed0"]["status"] == "complete", said


def test_interrupt_marks_interrupted_and_names_the_resume_command(tiny_config, tmp_path,
                                                                  monkeypatch) -> None:
    """In process (the real-signal version is tests/runner/test_signals.py)."""
    import cl_bench.run.experiment
    from cl_bench.errors import RunInterrupted, Stopped
    from cl_bench.run.lock import RunLock

    def stopped(*args, **kwargs):
        raise Stopped(15)

    monkeypatch.setattr(cl_bench.run.experiment, "run_cell", stopped)
    with pytest.raises(RunInterrupted) as err:
        run_experiment(tiny_config(), out_root=tmp_path, log=lambda _: None, progress=False)
    run_dir = next((tmp_path / "tiny").iterdir())
    assert err.value.signum == 15 and f"cl-bench run --resume {run_dir}" in str(err.value)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["interrupted_by"] == "SIGTERM"
    assert "error" not in manifest
    with RunLock(run_dir):  # released
        pass


def test_sigterm_stops_the_command_like_ctrl_c() -> None:
    """A cluster scheduler's SIGTERM becomes the same exception as Ctrl-C (then ``interrupted``,
    exit status 143: tests/runner/test_signals.py)."""
    import os
    import signal

    from cl_bench.cli import _sigterm_stops
    from cl_bench.errors import Stopped

    with pytest.raises(Stopped) as err, _sigterm_stops():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next bytecode
    assert err.value.signum == signal.SIGTERM and isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
