"""The sweep driver with a stand-in runner: skipping, resuming, failures, sweep.json, files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

import cl_bench.run.experiment
from cl_bench.cli import main as cli_main
from cl_bench.config import to_yaml, validate
from cl_bench.errors import RunError
from cl_bench.records import Record, RecordWriter
from cl_bench.sweep import run_sweep, sweep_from_dict
from cl_bench.sweep.execute import CellResult, execute_cell

FAIL_EPOCHS = 7  # the stand-in runner fails cells with this many epochs


class FakeRunner:
    """Writes what the runner writes (config, manifest, one record) without training."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, cfg, out_root="results", resume=None, log=print, progress=None,
                 run_id=None) -> Path:
        if resume is not None:
            run_dir = Path(resume)
            cfg = validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
            self.calls.append(("resume", run_dir.name))
        else:
            run_dir = Path(out_root) / cfg.experiment / run_id
            if run_dir.exists():
                raise RunError(f"run folder {run_dir} exists already")
            run_dir.mkdir(parents=True)
            (run_dir / "config.yaml").write_text(to_yaml(cfg))
            self.calls.append(("new", run_id))
        manifest = run_dir / "manifest.json"
        order = "custom" if isinstance(cfg.data.order, list) else cfg.data.order
        if cfg.train.epochs == FAIL_EPOCHS:
            manifest.write_text(json.dumps({"status": "failed", "order": order}))
            raise ValueError("deliberate failure")
        RecordWriter(run_dir / "records.csv").append([Record(
            run_dir.name, cfg.model.methods[0], cfg.strategy.name, False, cfg.seeds[0], order,
            0, "a", "a", 0, "image_auroc", 0.5 + cfg.seeds[0] / 10)])
        manifest.write_text(json.dumps({"status": "complete", "order": order}))
        return run_dir


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    fake = FakeRunner()
    monkeypatch.setattr(cl_bench.run.experiment, "run_experiment", fake)
    return fake


def sweep(grid: dict, **base):
    raw = {"experiment": "unit", "model": {"methods": ["stpm"], "weights": "none"},
           "data": {"categories": ["a", "b"]}, **base, "grid": grid}
    return sweep_from_dict(raw, "unit.yaml")


GRID = {"seeds": [0, 1], "train.epochs": [1, FAIL_EPOCHS], "data.order": ["alphabetical"]}


def test_failing_cell_is_recorded_and_restart_skips_complete_cells(
        tmp_path: Path, fake_runner: FakeRunner) -> None:
    spec = sweep(GRID)
    lines: list[str] = []
    outcome = run_sweep(spec, tmp_path, report=False, log=lines.append)
    assert sorted(r.status for r in outcome.results.values()) == [
        "complete", "complete", "failed", "failed"]
    assert all("deliberate failure" in r.error for r in outcome.failed)
    status = json.loads((tmp_path / "unit" / "sweep.json").read_text())
    assert status["counts"] == {"complete": 2, "skipped": 0, "failed": 2, "pending": 0}
    by_id = {c["run_id"]: c for c in status["cells"]}
    failed_id = outcome.failed[0].run_id
    assert by_id[failed_id]["error"] == "ValueError: deliberate failure"
    assert by_id[failed_id]["values"]["train.epochs"] == FAIL_EPOCHS
    log_text = (tmp_path / "unit" / "logs" / f"{failed_id}.log").read_text()
    assert "Traceback" in log_text and "deliberate failure" in log_text
    assert any("failed cells:" in line for line in lines)

    # restart: complete cells are skipped without a worker, failed ones are run again
    fake_runner.calls.clear()
    again = run_sweep(spec, tmp_path, report=False, log=lines.append)
    assert sorted(r.status for r in again.results.values()) == [
        "failed", "failed", "skipped", "skipped"]
    # they measured nothing (no records.csv), so their folders are started afresh
    assert sorted(kind for kind, _ in fake_runner.calls) == ["new", "new"]


def test_incomplete_cell_is_resumed_and_empty_folder_restarted(
        tmp_path: Path, fake_runner: FakeRunner) -> None:
    spec = sweep({"seeds": [0, 1, 2]})
    run_sweep(spec, tmp_path, report=False, log=lambda _: None)
    cells = spec.cells
    # cell 0 was cut half-way (manifest running); cell 1 died before measuring anything
    (tmp_path / "unit" / cells[0].run_id / "manifest.json").write_text('{"status": "running"}')
    (tmp_path / "unit" / cells[1].run_id / "records.csv").unlink()
    (tmp_path / "unit" / cells[1].run_id / "manifest.json").write_text('{"status": "failed"}')
    fake_runner.calls.clear()
    outcome = run_sweep(spec, tmp_path, report=False, log=lambda _: None)
    assert sorted(fake_runner.calls) == sorted([("resume", cells[0].run_id),
                                                ("new", cells[1].run_id)])
    assert outcome.results[cells[2].run_id].status == "skipped"
    assert not outcome.failed


def test_complete_cell_with_another_config_is_not_reused(
        tmp_path: Path, fake_runner: FakeRunner) -> None:
    run_sweep(sweep({"seeds": [0]}), tmp_path, report=False, log=lambda _: None)
    changed = sweep({"seeds": [0]}, train={"epochs": 3})
    outcome = run_sweep(changed, tmp_path, report=False, log=lambda _: None)
    (result,) = outcome.results.values()
    assert result.status == "failed"
    assert "train.epochs: 5 in the folder, 3 now" in result.error
    assert len(fake_runner.calls) == 1  # the completed folder was left alone


def test_complete_cell_is_reused_when_only_another_strategys_strength_changed(
        tmp_path: Path, fake_runner: FakeRunner) -> None:
    from cl_bench.sweep.driver import plan

    def fd_sweep(ewc_lambda: float, alpha: float):
        per_method = {"stpm": {"ewc": {"ewc_lambda": ewc_lambda},
                               "feature_distillation": {"alpha": alpha}}}
        return sweep({"seeds": [0]}, strategy={"name": "feature_distillation",
                                               "per_method": per_method})

    run_sweep(fd_sweep(1.0, 10.0), tmp_path, report=False, log=lambda _: None)
    # the EWC strength cannot change a feature-distillation cell: skipped, not refused
    (planned,) = plan(fd_sweep(0.1, 10.0), tmp_path)
    assert planned.action == "skip (complete)"
    outcome = run_sweep(fd_sweep(0.1, 10.0), tmp_path, report=False, log=lambda _: None)
    assert [r.status for r in outcome.results.values()] == ["skipped"]
    # its own strength does
    (planned,) = plan(fd_sweep(1.0, 1.0), tmp_path)
    assert planned.action == "fail (other config)"
    assert "alpha: 10.0 in the folder, 1.0 now" in planned.mismatch
    assert len(fake_runner.calls) == 1


def test_dry_run_and_exit_code(tmp_path: Path, fake_runner: FakeRunner,
                               capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"experiment": "unit", "model": {"weights": "none"},
                                    "data": {"categories": ["a", "b"]},
                                    "grid": {"seeds": [0, 1], "model.methods": ["stpm"]}}))
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stpm-seed0-" in out and "2 cell(s): 2 run" in out
    assert not (tmp_path / "unit").exists()
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--no-report"]) == 0
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--dry-run"]) == 0
    assert "2 skip (complete)" in capsys.readouterr().out
    path.write_text(path.read_text().replace("seeds:", "train.epochs: [7]\n  seeds:"))
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--no-report"]) == 1
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--jobs", "0"]) == 2


def test_sweep_ends_with_the_report_of_its_cells(
        tmp_path: Path, fake_runner: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import cl_bench.report

    calls: list = []
    monkeypatch.setattr(cl_bench.report, "console_summary", lambda dirs: calls.append(dirs) or "")
    monkeypatch.setattr(cl_bench.report, "build_report",
                        lambda dirs, out: calls.append((dirs, out)) or Path(out))
    stray = tmp_path / "unit" / "another-run"
    stray.mkdir(parents=True)
    (stray / "records.csv").write_text("not part of the sweep\n")
    spec = sweep({"seeds": [0, 1], "train.epochs": [1, FAIL_EPOCHS]})
    outcome = run_sweep(spec, tmp_path, log=lambda _: None)
    done = sorted(tmp_path / "unit" / r.run_id for r in outcome.results.values()
                  if r.status == "complete")
    assert [sorted(calls[0]), sorted(calls[1][0])] == [done, done]  # not the stray run
    assert calls[1][1] == tmp_path / "unit" / "report" == outcome.report_dir


def test_execute_cell_never_raises(tmp_path: Path, fake_runner: FakeRunner) -> None:
    (cell,) = sweep({"train.epochs": [FAIL_EPOCHS]}).cells
    result = execute_cell(cell, str(tmp_path))
    assert result.status == "failed" and result.wall_s >= 0


def test_backend_options_are_checked(tmp_path: Path) -> None:
    from cl_bench.errors import ConfigError
    from cl_bench.sweep.ray_backend import cell_gpus, run_ray

    spec = sweep({"seeds": [0]})
    with pytest.raises(ConfigError, match="--jobs applies to --backend local"):
        run_sweep(spec, tmp_path, backend="ray", jobs=2)
    with pytest.raises(ConfigError, match="apply to --backend ray only"):
        run_sweep(spec, tmp_path, backend="local", address="auto")
    with pytest.raises(ConfigError, match="choose shared or return"):
        list(run_ray(spec.cells, str(tmp_path), results="nfs"))
    with pytest.raises(ConfigError, match=r"data\.root: folder /no/such/mvtec does not exist"):
        run_sweep(sweep({"seeds": [0]}, data={"source": "folder", "root": "/no/such/mvtec"}),
                  tmp_path)
    assert not (tmp_path / "unit").exists()  # nothing written before the checks
    (cell,) = spec.cells
    (cpu_cell,) = sweep({"seeds": [0]}, device="cpu").cells
    assert [cell_gpus(cell, 2), cell_gpus(cell, 0), cell_gpus(cpu_cell, 2)] == [1, 0, 0]


def test_old_folders_with_the_written_out_reversed_order_still_match() -> None:
    from cl_bench.sweep.execute import config_differences

    wanted = {"data": {"order": "reversed", "order_seed": 0}, "seeds": [0]}
    assert config_differences({"data": {"order": ["b", "a"]}, "seeds": [0]}, wanted) == []
    assert config_differences({"data": {"order": ["a", "b"]}, "seeds": [0]}, wanted) == [
        "data.order: ['a', 'b'] in the folder, 'reversed' now"]


def test_only_the_options_a_cell_runs_with_are_compared() -> None:
    from cl_bench.config import relevant_to_run
    from cl_bench.sweep.execute import config_differences

    def config(name: str, shared: float, per_method: dict | None = None) -> dict:
        strategy = {"name": name, "ewc": {"ewc_lambda": shared, "decay_factor": 0.9}}
        if per_method is not None:
            strategy["per_method"] = per_method
        return {"model": {"methods": ["stpm"]}, "strategy": strategy}

    def differ(stored: dict, wanted: dict) -> list[str]:
        return config_differences(relevant_to_run(stored), relevant_to_run(wanted))

    # another strategy's section cannot change a naive cell
    assert differ(config("naive", 100.0), config("naive", 1.0)) == []
    # the EWC cell's own strength does, written shared or per detector
    assert differ(config("ewc", 100.0), config("ewc", 1.0)) != []
    stpm_1 = {"stpm": {"ewc": {"ewc_lambda": 1.0}}}
    assert differ(config("ewc", 100.0), config("ewc", 100.0, stpm_1))
    assert differ(config("ewc", 1.0), config("ewc", 100.0, stpm_1)) == []
    # an override for another detector does not touch this cell
    rd4ad_5 = {"rd4ad": {"ewc": {"ewc_lambda": 5.0}}}
    assert differ(config("ewc", 1.0), config("ewc", 1.0, rd4ad_5)) == []
    # rewording the description (a sweep file given one more grid value) changes no cell
    assert differ({**config("ewc", 1.0), "description": "at 10 and 20 epochs"},
                  {**config("ewc", 1.0), "description": "at 10, 20 and 40 epochs"}) == []
    assert differ({**config("ewc", 1.0), "seeds": [0]}, {**config("ewc", 1.0), "seeds": [1]})


def test_a_second_sweep_on_the_same_folder_is_one_clear_refusal(
        tmp_path: Path, fake_runner: FakeRunner, capsys: pytest.MonkeyPatch) -> None:
    """Issue #27: two sweeps on one --out both ended in RunLockedError tracebacks."""
    from cl_bench.run.lock import SweepLock

    path = tmp_path / "unit.yaml"
    path.write_text(yaml.safe_dump({"experiment": "unit", "model": {"weights": "none"},
                                    "data": {"categories": ["a", "b"]},
                                    "grid": {"seeds": [0, 1], "model.methods": ["stpm"]}}))
    (tmp_path / "unit").mkdir()
    with SweepLock(tmp_path / "unit"):  # the first sweep, still running
        status = cli_main(["sweep", str(path), "--out", str(tmp_path), "--no-report"])
    said = capsys.readouterr()
    assert status == 2 and "Traceback" not in said.err
    assert f"sweep folder {tmp_path / 'unit'} is being run by another cl-bench sweep (pid " \
        f"{os.getpid()}" in said.err and "--out DIR" in said.err
    assert not fake_runner.calls and not (tmp_path / "unit" / "sweep.json").exists()
    # once the first sweep has ended, the folder is free again
    assert cli_main(["sweep", str(path), "--out", str(tmp_path), "--no-report"]) == 0


def test_sweep_json_never_contradicts_a_cells_manifest(
        tmp_path: Path, fake_runner: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell that failed here because another process held it (and completed it) is complete
    in sweep.json, as its manifest says."""
    import cl_bench.sweep.driver as driver

    spec = sweep({"seeds": [0, 1]})
    taken = spec.cells[0]

    def backend(name, cells, out_root, *args):
        for cell in cells:
            if cell.run_id == taken.run_id:  # `cl-bench run --resume` of the cell held it...
                run_dir = Path(out_root) / "unit" / cell.run_id
                fake_runner(validate(cell.config), out_root=out_root, run_id=cell.run_id)
                yield cell, CellResult(cell.run_id, "failed", f"RunLockedError: run folder "
                                       f"{run_dir} is being written by another process")
            else:
                fake_runner(validate(cell.config), out_root=out_root, run_id=cell.run_id)
                yield cell, CellResult(cell.run_id, "complete")

    monkeypatch.setattr(driver, "_backend", backend)
    outcome = run_sweep(spec, tmp_path, report=False, log=lambda _: None)
    status = json.loads((tmp_path / "unit" / "sweep.json").read_text())
    for cell in status["cells"]:
        manifest = json.loads((tmp_path / "unit" / cell["run_dir"] / "manifest.json").read_text())
        assert manifest["status"] == "complete" and cell["status"] == "complete", cell
    assert not outcome.failed and status["counts"]["failed"] == 0
