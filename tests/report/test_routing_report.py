"""Side metrics of the routing strategy in the report: summary columns and a task-ID plot,
never an R matrix of their own."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from report_fabricate import TASKS, write_run

from cl_bench.report.build import build_report, compute, write_tables

#: task-ID accuracy (all, good, defective) pooled after steps 0, 1, 2; memory held after each
TASK_ID = {0: (1.0, 1.0, 1.0), 1: (0.75, 1.0, 0.5), 2: (0.5, 0.75, 0.25)}
MEMORY = {0: 2.0, 1: 4.0, 2: 6.0}


def _append_side_rows(run_dir: Path, run_id: str, method: str, seed: int,
                      shift: float) -> None:
    rows = []
    for step, (all_, good, defective) in TASK_ID.items():
        common = [run_id, method, "routing", False, seed, "alphabetical", step, TASKS[step],
                  "pooled", -1]
        for metric, value in (("task_id_acc", all_ + shift), ("task_id_acc_good", good + shift),
                              ("task_id_acc_defective", defective + shift),
                              ("memory_mb", MEMORY[step])):
            rows.append([*common, metric, repr(value)])
        for j in range(step + 1):  # per-task rows exist too; the report reads the pooled ones
            rows.append([run_id, method, "routing", False, seed, "alphabetical", step,
                         TASKS[step], TASKS[j], j, "task_id_acc", "0.0"])
            rows.append([run_id, method, "routing", False, seed, "alphabetical", step,
                         TASKS[step], TASKS[j], j, "image_auroc_misrouted",
                         repr(0.6 + 0.1 * step + shift) if j == 0 else "nan"])
    with (run_dir / "records.csv").open("a", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.fixture(scope="module")
def routing_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results") / "routing_experiment"
    for seed, shift in ((0, 0.0), (1, -0.1)):
        run_id = f"20261201T100000-rd{seed}"
        run_dir = write_run(root, run_id, "stpm", seed, strategy="routing")
        _append_side_rows(run_dir, run_id, "stpm", seed, shift)
    write_run(root, "20261201T100000-naive0", "stpm", 0, strategy="naive")
    return root


def test_side_metrics_are_summary_columns_not_matrices(routing_runs: Path, tmp_path) -> None:
    data = compute([routing_runs])
    assert data.metrics == ["image_auroc", "pixel_auroc"]  # no R matrix for task_id_acc
    tables, _ = write_tables(data, tmp_path)
    frame = tables["summary_image_auroc"].to_frame()
    routing = frame[frame["strategy"] == "routing"].iloc[0]
    naive = frame[frame["strategy"] == "naive"].iloc[0]
    assert routing["task_id_acc_mean"] == pytest.approx((0.5 + 0.4) / 2)
    assert routing["task_id_acc_good_mean"] == pytest.approx((0.75 + 0.65) / 2)
    assert routing["task_id_acc_defective_mean"] == pytest.approx((0.25 + 0.15) / 2)
    assert routing["memory_mb_per_task_mean"] == pytest.approx(6.0 / 3)
    assert routing["memory_mb_total_mean"] == pytest.approx(6.0)  # all experts, next to it
    assert naive[["task_id_acc_mean", "memory_mb_per_task_mean"]].isna().all()
    markdown = tables["summary_image_auroc"].to_markdown()
    assert "Task-ID acc (final)" in markdown and "Memory/task (MB)" in markdown
    assert "Memory total (MB)" in markdown


def test_task_id_plot_is_written(routing_runs: Path, tmp_path) -> None:
    build_report([routing_runs], tmp_path / "report")
    assert (tmp_path / "report" / "figures" / "task_id_accuracy.png").is_file()
    assert "Task-identification accuracy" in (tmp_path / "report" / "report.md").read_text()


def test_routing_diagnostics_table_per_task(routing_runs: Path, tmp_path) -> None:
    """One table per routing configuration: the final step's per-task task-ID accuracy and
    misrouted AUROC (mean over seeds; NaN where no image was misrouted), the pooled task-ID
    accuracy as the last row; none for naive."""
    data = compute([routing_runs])
    tables, _ = write_tables(data, tmp_path)
    assert [n for n in tables if n.startswith("routing_diagnostics")] == \
        ["routing_diagnostics__stpm__routing"]
    frame = tables["routing_diagnostics__stpm__routing"].to_frame().set_index("task")
    assert list(frame.index) == [*TASKS, "pooled"]
    assert frame.loc[TASKS[0], "image_auroc_misrouted_mean"] == pytest.approx((0.8 + 0.7) / 2)
    assert frame.loc[TASKS[1], ["image_auroc_misrouted_mean"]].isna().all()
    assert frame.loc["pooled", "task_id_acc_mean"] == pytest.approx((0.5 + 0.4) / 2)
    assert frame.loc[TASKS[2], "task_id_acc_mean"] == 0.0
    build_report([routing_runs], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Routing diagnostics" in text and "Image AUROC misrouted" in text
