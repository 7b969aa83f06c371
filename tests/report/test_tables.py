"""Table numbers against hand-built records, mean ± std cells, the bold best value, LaTeX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fabricate import make_experiment, write_run

from cl_bench.report.build import compute, task_order, write_tables
from cl_bench.report.tables import best_cells, final_task_table, summary_table


@pytest.fixture(scope="module")
def data(experiment_dir: Path):
    return compute([experiment_dir])


def test_summary_numbers_match_hand_computation(data) -> None:
    table = summary_table(data.summary, "image_auroc")
    assert table.rows == ["stpm / naive", "hybrid / naive"]
    assert table.columns == ["ACC", "FM", "BWT", "FWT", "Retention", "Pooled (final)"]
    acc, fm = table.columns.index("ACC"), table.columns.index("FM")
    # hybrid ACC over seeds 0, 1, 2: 0.85, 0.86, 0.87; stpm 0.7333 + 0.02 * seed
    np.testing.assert_allclose(table.mean[:, acc], [0.75333333, 0.86])
    np.testing.assert_allclose(table.std[:, acc], [0.02, 0.01])
    np.testing.assert_allclose(table.mean[:, fm], [0.215, 0.11])
    assert (table.count[:, acc] == 3).all()


def test_best_value_is_bold_in_the_right_direction(data) -> None:
    table = summary_table(data.summary, "image_auroc")
    markdown = table.to_markdown()
    hybrid_line = next(line for line in markdown.splitlines() if line.startswith("| hybrid"))
    stpm_line = next(line for line in markdown.splitlines() if line.startswith("| stpm"))
    assert "**0.860 ± 0.010**" in hybrid_line  # ACC: higher is better
    assert "**0.110 ± 0.000**" in hybrid_line  # FM: lower is better
    assert "0.753 ± 0.020" in stpm_line and "**0.753" not in stpm_line
    assert "**0.215" not in stpm_line
    # BWT: hybrid -0.110 beats stpm -0.215 (higher is better)
    assert table.bold[1, table.columns.index("BWT")]
    assert not table.bold[0].any()


def test_latex_is_booktabs_with_bold_and_escapes(data) -> None:
    latex = summary_table(data.summary, "image_auroc").to_latex()
    assert "\\toprule" in latex and "\\midrule" in latex and "\\bottomrule" in latex
    assert "$\\mathbf{0.860 \\pm 0.010}$" in latex
    assert "$0.753 \\pm 0.020$" in latex
    per_task = final_task_table(data.final, "image_auroc", task_order(data)).to_latex()
    assert "metal\\_nut" in per_task and "metal_nut" not in per_task.replace("metal\\_nut", "")


def test_final_per_task_table_bold_per_task(data) -> None:
    table = final_task_table(data.final, "pixel_auroc", task_order(data))
    assert table.rows == ["bottle", "cable", "metal_nut"]
    assert table.columns == ["stpm / naive", "hybrid / naive"]
    # final row: hybrid [.75,.85,.95] + .01 s - .05; stpm [.60,.70,.90] + .02 s - .05
    np.testing.assert_allclose(table.mean, [[0.57, 0.71], [0.67, 0.81], [0.87, 0.91]])
    assert table.bold[:, 1].all() and not table.bold[:, 0].any()


def test_reference_strategies_do_not_take_the_bold(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path, seeds=(0,), maps=False)
    write_run(exp, "oracle", "stpm", 10, strategy="independent", task_aware=True)
    table = summary_table(compute([exp]).summary, "image_auroc")
    oracle = table.rows.index("stpm / independent (task-aware oracle)")
    acc = table.columns.index("ACC")
    assert table.mean[oracle, acc] > table.mean[:, acc].max() - 1e-9  # it is the highest ...
    assert not table.bold[oracle].any()  # ... yet continual methods compete for bold
    assert table.bold[table.rows.index("hybrid / naive"), acc]


def test_best_cells_ties_and_nan() -> None:
    mean = np.array([[0.5, np.nan], [0.5004, 0.2], [0.4, 0.1]])
    eligible = np.ones_like(mean, dtype=bool)
    bold = best_cells(mean, [False, True], eligible)
    assert bold[:, 0].tolist() == [True, True, False]  # equal as displayed (3 digits)
    assert bold[:, 1].tolist() == [False, False, True]  # lower is better, NaN never wins


def test_table_files_csv_md_tex(data, tmp_path: Path) -> None:
    _tables, files = write_tables(data, tmp_path)
    names = {p.name for p in files}
    for stem in ("summary_image_auroc", "final_per_task_pixel_auroc", "comparison",
                 "R_image_auroc__hybrid__naive"):
        assert {f"{stem}.csv", f"{stem}.md", f"{stem}.tex"} <= names
    frame = pd.read_csv(tmp_path / "summary_image_auroc.csv")
    hybrid = frame[frame["method"] == "hybrid"].iloc[0]
    assert hybrid["acc_mean"] == pytest.approx(0.86) and hybrid["acc_count"] == 3
    assert bool(hybrid["acc_best"]) and bool(hybrid["retention_best"])
    comparison = (tmp_path / "comparison.md").read_text()
    assert "| Image AUROC | naive | stpm | ACC | 3 | 0.860 | 0.753 | +0.107 |" in comparison


def test_two_task_orders_give_one_r_table_each(tmp_path: Path) -> None:
    exp = tmp_path / "orders"
    for seed in (0, 1, 2):
        for method in ("stpm", "hybrid"):
            write_run(exp, f"{method}-a{seed}", method, seed)
            write_run(exp, f"{method}-r{seed}", method, seed, order="reversed",
                      tasks=("metal_nut", "cable", "bottle"))
    data = compute([exp], ["image_auroc"])
    assert data.sequences == [("bottle", "cable", "metal_nut"), ("metal_nut", "cable", "bottle")]
    tables, _ = write_tables(data, tmp_path / "tables")
    assert {"R_image_auroc__hybrid__naive_order1", "R_image_auroc__hybrid__naive_order2"} <= set(
        tables)
    assert tables["R_image_auroc__hybrid__naive_order2"].columns == ["metal_nut", "cable",
                                                                     "bottle"]
    summary = summary_table(data.summary, "image_auroc")
    acc = summary.columns.index("ACC")
    assert (summary.count[:, acc] == 6).all()  # 3 seeds x 2 orders
    # R is the same by position in both orders, so per task the final values differ by order
    per_task = final_task_table(data.final, "image_auroc", task_order(data))
    hybrid = per_task.columns.index("hybrid / naive")
    assert per_task.mean[per_task.rows.index("bottle"), hybrid] == pytest.approx(
        (0.76 + 0.96) / 2)
    assert data.paired.loc[data.paired["quantity"] == "acc", "n"].item() == 6
