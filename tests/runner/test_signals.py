"""Ctrl-C and SIGTERM stop a real ``cl-bench run`` cleanly; two resumes of one folder never both
run; the records end identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment

LINES = ["--no-report", "--progress", "lines", "--progress-interval", "0"]


def _default_sigint() -> None:
    """Ctrl-C as at a terminal: a test run from a background job (``cmd &``, nohup) starts its
    children with SIGINT ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cl_bench.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_default_sigint)


def _read_until(proc: subprocess.Popen, pattern: str) -> list[str]:
    """Lines of ``proc`` up to the first one matching ``pattern`` (fails if it exits first)."""
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"exited with {proc.wait()} before {pattern!r}:\n{''.join(lines)}"
        lines.append(line)
        if re.search(pattern, line):
            return lines


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_ctrl_c_sigterm_and_a_second_resume(tmp_path, synthetic_cache) -> None:
    raw = tiny_raw(**{"train.epochs": 6, "num_threads": 2})
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CL_BENCH_CACHE": str(synthetic_cache), "PYTHONUNBUFFERED": "1"}

    # Ctrl-C while the first task trains
    first = _start("run", str(config), "--out", str(tmp_path / "out"), *LINES, env=env)
    said = "".join(_read_until(first, r"\] train task 1/2 .* epoch 1/6"))
    run_dir = Path(re.search(r"run folder: (\S+)", said).group(1))
    first.send_signal(signal.SIGINT)
    rest, _ = first.communicate(timeout=300)
    assert first.returncode == 130, rest
    assert "interrupted by SIGINT" in rest and "Traceback" not in rest
    assert f"cl-bench run --resume {run_dir}\n" in rest  # the exact command
    manifest = _manifest(run_dir)
    assert manifest["status"] == "interrupted" and manifest["interrupted_by"] == "SIGINT"
    assert "error" not in manifest

    # a resume holds the folder; a second resume fails at once, naming it; SIGTERM stops it
    holder = _start("run", "--resume", str(run_dir), *LINES, env=env)
    _read_until(holder, r"\] train task")
    holder.send_signal(signal.SIGSTOP)  # keeps its lock, whatever the machine's speed
    try:
        second = subprocess.run([sys.executable, "-m", "cl_bench.cli", "run", "--resume",
                                 str(run_dir), "--no-report"], env=env, capture_output=True,
                                text=True, timeout=300)
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.send_signal(signal.SIGCONT)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"pid {holder.pid} " in second.stderr and "Traceback" not in second.stderr
    rest, _ = holder.communicate(timeout=300)
    assert holder.returncode == 143, rest
    assert "interrupted by SIGTERM" in rest and "Traceback" not in rest
    assert _manifest(run_dir)["interrupted_by"] == "SIGTERM"

    # the last resume completes; the records are those of an uninterrupted run
    last = subprocess.run([sys.executable, "-m", "cl_bench.cli", "run", "--resume",
                           str(run_dir), "--no-report", "--progress", "off"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert last.returncode == 0, last.stdout + last.stderr
    assert _manifest(run_dir)["status"] == "complete"
    reference = run_experiment(validate(raw), out_root=tmp_path / "reference",
                               log=lambda _: None, progress=False)
    got = pd.read_csv(run_dir / "records.csv", dtype=str).drop(columns="run_id")
    want = pd.read_csv(reference / "records.csv", dtype=str).drop(columns="run_id")
    pd.testing.assert_frame_equal(got, want)
