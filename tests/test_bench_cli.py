"""``cl-bench bench cli``: the goals' arithmetic on given medians, and bad arguments refused
with exit 2 before anything is timed (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from cl_bench.benchmarks.cli_speed import summary
from cl_bench.cli import main


def test_summary_compares_each_figure_with_its_goal() -> None:
    lines = summary({"python -c pass": 0.2, "cl-bench --help": 0.45,
                     "python -c 'import torch'": 10.0, "cl-bench list": 13.0,
                     "cl-bench report": 30.0, "cl-bench report (baseline)": 90.0})
    assert lines == [
        "--help - python -c pass: 0.25 s (goal <= 0.3 s: met)",
        "list / import torch: 1.30x (goal <= 1.2x: NOT met)",
        "report: baseline / now: 3.00x (goal >= 2.0x: met)",
    ]


def test_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["bench", "cli", "--baseline-src", str(tmp_path)]) == 2
    assert "--baseline-src needs --run" in capsys.readouterr().err
    assert main(["bench", "cli", "--run", str(tmp_path)]) == 2
    assert "no records.csv" in capsys.readouterr().err
