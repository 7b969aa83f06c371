"""Loading run folders: recursive search, typing, partial and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_fabricate import TASKS, write_run

from cl_bench.errors import DataError
from cl_bench.records import COLUMN_TYPES, COLUMNS
from cl_bench.report import find_run_dirs, load_runs
from cl_bench.report.build import compute


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


def test_every_column_is_typed_as_record_declares(tmp_path: Path) -> None:
    df = load_runs(write_run(tmp_path / "exp", "r1", "stpm", 0))
    kinds = {str: "O", int: "i", float: "f", bool: "b"}
    assert {c: df[c].dtype.kind for c in COLUMN_TYPES} == {
        c: kinds[kind] for c, kind in COLUMN_TYPES.items()}


@pytest.mark.parametrize(("column", "bad", "what"), [
    ("seed", "one", "an integer"), ("eval_index", "1.5", "an integer"),
    ("task_aware", "maybe", "True or False")])
def test_a_malformed_cell_names_its_line_and_column(tmp_path: Path, column: str, bad: str,
                                                    what: str) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0)
    csv_path = run / "records.csv"
    lines = csv_path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[COLUMNS.index(column)] = bad
    lines[2] = ",".join(cells)
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"line 3, column '{column}': '{bad}' is not {what}"):
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


def test_a_failed_run_and_its_complete_rerun(tmp_path: Path) -> None:
    failed = write_run(tmp_path / "exp", "20261128T090000-a", "stpm", 0, steps=[0],
                       status="failed")
    rerun = write_run(tmp_path / "exp", "20261128T100000-b", "stpm", 0)
    df = load_runs(tmp_path / "exp")  # the loader keeps both, with their status
    assert set(df["run_id"]) == {"20261128T090000-a", "20261128T100000-b"}
    data = compute([tmp_path / "exp"])  # the report keeps the complete one and lists the other
    assert set(data.records["run_id"]) == {"20261128T100000-b"}
    assert [run.path for run in data.excluded] == [failed]
    assert any(str(failed) in note and "failed" in note for note in data.notes)
    assert {m.run_dir for m in data.matrices} == {str(rerun)}


def test_two_complete_runs_of_one_key_are_an_error_naming_both(tmp_path: Path) -> None:
    first = write_run(tmp_path / "exp", "20261128T090000-a", "stpm", 0)
    second = write_run(tmp_path / "exp", "20261128T100000-b", "stpm", 0)
    with pytest.raises(DataError, match=rf"stpm/naive seed 0 order alphabetical is in several "
                                        rf"run folders: {first}, {second}"):
        compute([tmp_path / "exp"])


def test_running_interrupted_and_manifestless_runs_are_left_out(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    for seed in (0, 1, 2):
        write_run(exp, f"h{seed}", "hybrid", seed)
        write_run(exp, f"s{seed}", "stpm", seed)
    write_run(exp, "h3", "hybrid", 3, status="running", steps=[0, 1])
    write_run(exp, "s3", "stpm", 3, status="interrupted")
    write_run(exp, "h4", "hybrid", 4)
    (exp / "h4" / "manifest.json").unlink()
    data = compute([exp])
    assert sorted(run.run_id for run in data.excluded) == ["h3", "h4", "s3"]
    assert set(data.per_run["seed"]) == {0, 1, 2}
    assert set(data.paired["n"]) == {3}
    assert (data.summary["count"] <= 3).all()


def test_no_complete_run_is_a_clear_error(tmp_path: Path) -> None:
    write_run(tmp_path / "exp", "r1", "stpm", 0, steps=[0], status="running")
    with pytest.raises(DataError, match=r"no complete run.*r1 is running"):
        compute([tmp_path / "exp"])


def test_fpr_limit_is_read_from_config_yaml(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0, fpr_limit=0.05)
    assert set(load_runs(run)["pro_fpr_limit"]) == {0.05}
    (run / "config.yaml").write_text("eval:\n  pro_fpr_limit: 2\n")
    with pytest.raises(DataError, match=r"config\.yaml: eval\.pro_fpr_limit = 2 is not in"):
        load_runs(run)


def test_task_names_come_from_eval_index(experiment_dir: Path) -> None:
    df = load_runs(experiment_dir)
    per_task = df[df["eval_index"] >= 0].drop_duplicates("eval_index").sort_values("eval_index")
    assert tuple(per_task["eval_task"]) == TASKS
