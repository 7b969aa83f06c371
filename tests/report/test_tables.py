"""Table numbers against hand-built records, mean ± std cells, the bold best value, LaTeX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fabricate import make_experiment, write_run

from cl_bench.errors import DataError
from cl_bench.report.build import compute, task_order, write_tables
from cl_bench.report.markdown import protocol_text
from cl_bench.report.matrices import MatrixAggregate
from cl_bench.report.tables import (
    best_cells,
    comparison_table,
    final_task_table,
    matrix_table,
    summary_table,
)


@pytest.fixture(scope="module")
def data(experiment_dir: Path):
    return compute([experiment_dir])


def test_summary_numbers_match_hand_computation(data) -> None:
    table = summary_table(data.summary, "image_auroc")
    assert table.rows == ["stpm / naive", "hybrid / naive"]
    assert table.columns == ["ACC", "FM", "BWT", "FWT", "Retention", "Retention 95% low",
                             "Retention 95% high", "Retention: tasks excluded", "Pooled (final)"]
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
    assert ("| Image AUROC | ACC | hybrid − stpm | strategy naive | 3 | 0.860 | 0.753 | +0.107 |"
            in comparison)


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


def test_r_matrix_bold_never_picks_the_untrained_row() -> None:
    # task 1's untrained value (0.95) is above every trained one: the bold goes to step 0's 0.7
    mean = np.array([[0.9, 0.7], [0.8, 0.6]])
    agg = MatrixAggregate("hybrid", "naive", False, "image_auroc", ("a", "b"), mean,
                          np.full((2, 2), np.nan), np.ones((2, 2), dtype=int),
                          np.array([0.5, 0.95]), np.full(2, np.nan))
    table = matrix_table(agg, "R_test")
    assert table.rows[0] == "(untrained)"
    assert table.bold.tolist() == [[False, False], [True, True], [False, False]]


def _paired_rows(**overrides) -> pd.DataFrame:
    row = {"metric": "au_pro", "strategy": "feature_distillation", "task_aware": False,
           "baseline": "rd4ad", "quantity": "acc", "n": 6, "reference_mean": 0.8,
           "baseline_mean": 0.7, "mean_diff": 0.1, "t_pvalue": 0.01, "t_pvalue_holm": 0.04,
           "wilcoxon_pvalue": 0.03125, "wilcoxon_pvalue_holm": 0.0625, "wilcoxon_note": ""}
    return pd.DataFrame([{**row, **overrides}])


def test_comparison_bold_only_where_the_holm_adjusted_p_is_below_005() -> None:
    table = comparison_table(_paired_rows(), fpr_limit=0.05)
    (cells,) = table.body_markdown
    assert cells[0] == "AU-PRO (0.05)"
    assert cells[8:] == ["0.010", "**0.040**", "0.031", "0.062"]  # raw p never bold
    (cells,) = comparison_table(_paired_rows(t_pvalue_holm=0.06)).body_markdown
    assert cells[9] == "0.060"
    (cells,) = comparison_table(_paired_rows(t_pvalue_holm=0.5, wilcoxon_pvalue_holm=0.049)
                                ).body_markdown
    assert cells[9] == "0.500" and cells[11] == "**0.049**"
    assert "p Holm (paired t)" in table.header and "Holm-Bonferroni" in table.caption
    assert "1 t-tests, 1 Wilcoxon tests" in table.caption


def test_comparison_says_n_too_small_and_escapes_latex() -> None:
    rows = _paired_rows(n=3, wilcoxon_pvalue=np.nan, wilcoxon_pvalue_holm=np.nan,
                        wilcoxon_note="n too small")
    table = comparison_table(rows, excluded=["/r/x_running"])
    assert table.body_markdown[0][10:] == ["n too small", "n too small"]
    latex = table.to_latex()
    assert "feature\\_distillation" in latex and "feature_distillation" not in latex
    assert "/r/x\\_running" in latex  # the excluded runs are named in the caption
    assert "\\textbf{0.040}" in latex and latex.count("\\textbf") == 1  # adjusted t only


def test_au_pro_label_chance_level_and_protocol_follow_the_fpr_limit(tmp_path: Path) -> None:
    exp = tmp_path / "pro"
    for seed in (0, 1, 2):
        for method in ("stpm", "hybrid"):
            write_run(exp, f"{method}{seed}", method, seed, metrics=("au_pro",), fpr_limit=0.05)
    data = compute([exp])
    assert data.fpr_limit == 0.05
    table = summary_table(data.summary, "au_pro", data.fpr_limit)
    assert table.title == "Summary, AU-PRO (0.05)"
    assert "c = 0.025" in table.caption
    # hybrid seed s: f_j = (R[2,j] - c) / (R[j,j] - c), weights w_j = R[j,j] - c - 0.05, j < 2,
    # with c = 0.025
    retention = table.columns.index("Retention")

    def by_hand(s: int) -> float:
        learnt = np.array([0.90, 0.92]) + 0.01 * s - 0.025
        kept = np.array([0.75, 0.85]) + 0.01 * s - 0.025
        weight = learnt - 0.05
        return float(np.sum(weight * kept / learnt) / np.sum(weight))

    expected = np.mean([by_hand(s) for s in range(3)])
    assert table.mean[table.rows.index("hybrid / naive"), retention] == pytest.approx(expected)
    text = protocol_text(data.fpr_limit)
    assert "false-positive rate of 0.05" in text and "0.025 (AU-PRO up to FPR 0.05)" in text
    tables, _ = write_tables(data, tmp_path / "tables")
    assert tables["comparison"].body_markdown[0][0] == "AU-PRO (0.05)"


def test_au_pro_chance_level_at_the_default_limit_is_015(tmp_path: Path) -> None:
    exp = tmp_path / "pro"
    write_run(exp, "hybrid0", "hybrid", 0, metrics=("au_pro",), fpr_limit=0.3)
    data = compute([exp])
    value = data.per_run.set_index("quantity").loc["retention", "value"]
    learnt, kept = np.array([0.90, 0.92]) - 0.15, np.array([0.75, 0.85]) - 0.15
    weight = learnt - 0.05
    assert value == pytest.approx(np.sum(weight * kept / learnt) / np.sum(weight))
    assert "AU-PRO (0.3)" in summary_table(data.summary, "au_pro", data.fpr_limit).title


def test_runs_with_different_fpr_limits_are_not_pooled(tmp_path: Path) -> None:
    exp = tmp_path / "pro"
    write_run(exp, "a", "hybrid", 0, metrics=("au_pro",), fpr_limit=0.3)
    write_run(exp, "b", "hybrid", 1, metrics=("au_pro",), fpr_limit=0.05)
    with pytest.raises(DataError, match=r"different FPR limits.*0.05: \S*b.*0.3: \S*a"):
        compute([exp])
    write_run(exp, "c", "stpm", 0, metrics=("image_auroc",), fpr_limit=0.3)
    assert compute([exp / "c"]).metrics == ["image_auroc"]


def test_a_missing_fpr_limit_is_said_in_the_notes(tmp_path: Path) -> None:
    exp = tmp_path / "pro"
    write_run(exp, "a", "hybrid", 0, metrics=("au_pro",))
    data = compute([exp])
    assert data.fpr_limit == 0.3
    assert any("no eval.pro_fpr_limit" in note for note in data.notes)


def test_intransigence_column_appears_with_cumulative_runs(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path, seeds=(0, 1, 2), maps=False)
    write_run(exp, "joint-hybrid", "hybrid", 0, strategy="joint")  # never the reference
    data = compute([exp])
    assert "Intransigence" not in summary_table(data.summary, "image_auroc").columns
    assert any("No run has one, so the column is absent" in note for note in data.notes)
    for seed in (0, 1, 2):
        for method in ("hybrid", "stpm"):
            write_run(exp, f"cumulative-{method}{seed}", method, seed, strategy="cumulative",
                      shift=0.02)
    data = compute([exp])
    table = summary_table(data.summary, "image_auroc")
    col = table.columns.index("Intransigence")
    hybrid = table.rows.index("hybrid / naive")
    # R*_k = the cumulative run's diagonal = the naive diagonal + 0.02 (same seed): I = 0.02
    assert table.mean[hybrid, col] == pytest.approx(0.02)
    assert np.isnan(table.mean[table.rows.index("hybrid / cumulative"), col])
    assert "R*_k" in table.caption and "cumulative run" in table.caption
    assert "intransigence" in set(data.paired["quantity"])
