"""The command line answers without loading what it does not use: ``cl-bench --help`` imports
neither torch nor Avalanche, ``report`` of runs that recorded their detectors (manifest key
``detectors``) neither torch, Avalanche nor scikit-learn (of older runs it loads torch through
the detector registry, whose labels, order and colours it shows), ``data info``
no Avalanche and ``list`` no Avalanche nor scikit-learn. Each command runs in a fresh
interpreter; the test reads which of those packages ``sys.modules`` holds afterwards (no
timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS / "report"), str(TESTS / "data")]

from data_helpers import make_category  # noqa: E402
from report_fabricate import make_experiment  # noqa: E402

HEAVY = ("torch", "avalanche", "sklearn", "pandas", "matplotlib")
PROBE = """
import json, sys
from cl_bench.cli import main
heavy = sys.argv.pop(1).split(",")
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def loaded_after(*argv: str) -> list[str]:
    """The packages of :data:`HEAVY` imported by ``cl-bench ARGV`` (which must succeed)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *argv],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] in (0, None), proc.stderr
    return result["loaded"]


def test_help_imports_neither_torch_nor_avalanche() -> None:
    assert not {"torch", "avalanche"} & set(loaded_after("--help"))


@pytest.mark.parametrize("command", ["train-one", "bench", "run", "report", "sweep", "list"])
def test_each_command_help_imports_no_torch(command: str) -> None:
    assert "torch" not in loaded_after(command, "--help")


def test_list_imports_no_avalanche_nor_scikit_learn() -> None:
    loaded = loaded_after("list")
    assert "torch" in loaded  # it lists the detectors, which are torch modules
    assert not {"avalanche", "sklearn"} & set(loaded)


def test_report_imports_no_torch_nor_avalanche(tmp_path: Path) -> None:
    run_dir = next(make_experiment(tmp_path / "results", seeds=(0,), maps=False).glob("*/"))
    assert "detectors" in json.loads((run_dir / "manifest.json").read_text())
    loaded = loaded_after("report", str(run_dir), "--out", str(tmp_path / "report"))
    assert "pandas" in loaded and (tmp_path / "report" / "report.md").is_file()
    assert not {"torch", "avalanche", "sklearn"} & set(loaded)


def test_metrics_package_loads_torch_only_for_the_streaming_evaluator() -> None:
    """``cl_bench.metrics`` imports its modules on first use: the continual-learning metrics
    (what the report needs) load no torch; the streaming evaluator does."""
    probe = ("import sys; from cl_bench.metrics import summarize, MetricInputError; "
             "a = 'torch' in sys.modules; from cl_bench.metrics import TaskEvaluator; "
             "print(a, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


def test_data_info_imports_no_avalanche(tmp_path: Path) -> None:
    make_category(tmp_path / "set", "widget")
    assert "avalanche" not in loaded_after("data", "info", str(tmp_path / "set"))
