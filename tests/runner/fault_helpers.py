"""Helpers for the fault-injection tests: run folders, snapshots, the CLI in this process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from runner_helpers import tiny_raw

from cl_bench.config import to_yaml, validate


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (relative path -> sha256 and mode): 'nothing altered'."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[str(path.relative_to(folder))] = f"{digest} {path.stat().st_mode:o}"
    return files


def fake_run(run_dir: Path, status: str = "interrupted", **overrides) -> Path:
    """A run folder as an interrupted tiny run leaves it before its first step completed."""
    from cl_bench.manifest import Manifest

    run_dir.mkdir(parents=True)
    from cl_bench.run.digest import config_digest

    cfg = validate(tiny_raw(**overrides))
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    (run_dir / "records.csv").write_text("")
    raw = yaml.safe_load(to_yaml(cfg))
    manifest = Manifest.create(run_dir / "manifest.json", run_id=run_dir.name,
                               experiment="tiny", config_digest=config_digest(raw),
                               config_at_start=raw)
    manifest.data["status"] = status
    manifest.save()
    return run_dir


def write_config(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(tiny_raw(**overrides)))
    return path


def cli(capsys, *argv: str) -> tuple[int, str]:
    """``cl-bench ARGV`` in this process: (exit status, stdout + stderr). An exception that
    escapes (a traceback) fails the test."""
    from cl_bench.cli import main

    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err
