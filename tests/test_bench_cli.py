"""``cl-bench bench cli``: the goals' arithmetic on given medians, and bad arguments refused
with exit 2 before anything is timed (no timing is asserted)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cl_bench.benchmarks import cli_speed
from cl_bench.benchmarks.cli_speed import (
    check_sources,
    contenders,
    imported_from,
    summary,
    this_source,
)
from cl_bench.cli import main
from cl_bench.errors import RunError


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


def _fake_checkout(root: Path) -> Path:
    """A folder that looks like a cl-bench checkout: a ``cl_bench`` package, nothing more."""
    (root / "cl_bench").mkdir(parents=True)
    (root / "cl_bench" / "__init__.py").write_text("")
    return root


def test_baseline_imports_its_own_code_not_the_working_directory(tmp_path: Path) -> None:
    # `python -m` and `-c` put the working directory first on sys.path: started in a checkout,
    # the "baseline" would run the checkout's code whatever PYTHONPATH says.
    base = _fake_checkout(tmp_path / "base")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = argparse.Namespace(run=tmp_path / "run", baseline_src=base)
    commands = contenders(args, tmp_path / "out")
    baseline_env = commands["cl-bench report (baseline)"][1]
    assert imported_from(baseline_env, empty) == base.resolve()
    assert imported_from(commands["cl-bench report"][1], empty) == this_source()
    check_sources(commands, base, empty)  # nothing raised
    with pytest.raises(RunError, match="would import cl_bench from"):
        check_sources(commands, base, this_source())


def test_every_command_is_timed_in_an_empty_folder(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "records.csv").write_text("")
    base = _fake_checkout(tmp_path / "base")
    seen: list[tuple[str, Path | None]] = []

    def fake_timed(command: list[str], extra_env: dict, cwd: Path | None = None) -> float:
        seen.append((" ".join(command), cwd))
        return 1.0

    monkeypatch.setattr(cli_speed, "timed", fake_timed)
    assert main(["bench", "cli", "--repeat", "1", "--run", str(run_dir),
                 "--baseline-src", str(base)]) == 0
    assert len(seen) == 6
    for command, cwd in seen:
        assert cwd is not None and cwd.name == "cwd", command
        assert cwd.resolve() != this_source()
