"""Loading run folders: recursive search, typing, partial and malformed files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from report_fabricate import TASKS, write_run

from cl_bench.errors import DataError
from cl_bench.report import find_run_dirs, load_runs


def test_load_runs_finds_every_run_below_a_folder(experiment_dir: Path) -> None:
    df = load_runs(experiment_dir)
    assert set(df["run_id"]) == {f"20261128T100000-{m}{s}" for m in ("stpm", "hybrid")
                                 for s in (0, 1, 2)}
    # 6 runs x 2 metrics x (untrained 3 + 3 steps x (3 tasks + pooled))
    assert len(df) == 6 * 2 * (3 + 3 * 4)
    assert df["seed"].dtype.kind == "i" and df["step"].dtype.kind == "i"
    assert df["value"].dtype.kind == "f" and df["task_aware"].dtype == bool
    assert set(df["status"]) == {"complete"}
    assert sorted(df.attrs["runs"]) == sorted(set(df["run_id"]))


def test_a_run_folder_and_a_parent_give_the_same_run_once(experiment_dir: Path) -> None:
    run = experiment_dir / "20261128T100000-hybrid1"
    assert find_run_dirs([run, experiment_dir, run / "records.csv"]).count(run) == 1
    df = load_runs([run])
    row = df[(df["step"] == 1) & (df["eval_index"] == 0) & (df["metric"] == "image_auroc")]
    assert row["value"].item() == pytest.approx(0.80 + 0.01)


def test_a_cut_last_row_of_a_running_run_is_dropped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0, steps=[0], status="running")
    csv_path = run / "records.csv"
    text = csv_path.read_text()
    csv_path.write_text(text + "r1,stpm,naive,False,0,alphabetical,1,cable,bot")
    df = load_runs(run)
    assert set(df["step"]) == {-1, 0}
    assert set(df["status"]) == {"running"}


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0)
    csv_path = run / "records.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(DataError, match=r"records\.csv.*missing column\(s\) value"):
        load_runs(run)


def test_non_numeric_value_names_the_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0)
    csv_path = run / "records.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",oops"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 4, column 'value': 'oops'"):
        load_runs(run)


def test_nan_values_are_kept_as_nan(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0)
    csv_path = run / "records.csv"
    lines = csv_path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",nan"
    csv_path.write_text("\n".join(lines) + "\n")
    assert np.isnan(load_runs(run)["value"].iloc[0])


def test_missing_path_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_runs(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no records\.csv found"):
        load_runs(tmp_path)


def test_duplicate_run_key_keeps_the_fuller_run_and_warns(tmp_path: Path) -> None:
    write_run(tmp_path / "exp", "20261128T090000-a", "stpm", 0, steps=[0], status="failed")
    write_run(tmp_path / "exp", "20261128T100000-b", "stpm", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(tmp_path / "exp")
    assert set(df["run_id"]) == {"20261128T100000-b"}
    assert any("keeping 20261128T100000-b" in str(w.message) for w in caught)


def test_task_names_come_from_eval_index(experiment_dir: Path) -> None:
    df = load_runs(experiment_dir)
    per_task = df[df["eval_index"] >= 0].drop_duplicates("eval_index").sort_values("eval_index")
    assert tuple(per_task["eval_task"]) == TASKS
