"""Result matrices, per-run continual metrics, aggregation over seeds, the paired comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_fabricate import BASELINE, known_matrix, known_pooled, make_experiment, write_run
from scipy import stats

from cl_bench.errors import DataError
from cl_bench.report import load_runs
from cl_bench.report.aggregate import (
    aggregate,
    aggregate_matrices,
    build_matrices,
    paired_comparison,
    per_run_summary,
)


@pytest.fixture(scope="module")
def matrices(experiment_dir: Path):
    return build_matrices(load_runs(experiment_dir))


@pytest.fixture(scope="module")
def per_run(matrices):
    return per_run_summary(matrices)


def _value(frame, **where):
    for key, value in where.items():
        frame = frame[frame[key] == value]
    assert len(frame) == 1, where
    return frame.iloc[0]


def test_matrices_hold_the_records(matrices) -> None:
    m = next(m for m in matrices if m.method == "stpm" and m.seed == 2
             and m.metric == "image_auroc")
    np.testing.assert_allclose(m.R, known_matrix("stpm", 2))
    np.testing.assert_allclose(m.baseline, BASELINE)
    np.testing.assert_allclose(m.pooled, [known_pooled("stpm", 2, i) for i in range(3)])
    assert m.tasks == ("bottle", "cable", "metal_nut") and m.complete


def test_per_run_metrics_match_hand_computation(per_run) -> None:
    # hybrid seed 0: R = [[.90,.60,.55],[.80,.92,.60],[.75,.85,.95]], b = [.50,.52,.48]
    rows = per_run[(per_run["method"] == "hybrid") & (per_run["seed"] == 0)
                   & (per_run["metric"] == "image_auroc")].set_index("quantity")["value"]
    assert rows["acc"] == pytest.approx((0.75 + 0.85 + 0.95) / 3)
    assert rows["fm"] == pytest.approx(((0.90 - 0.75) + (0.92 - 0.85)) / 2)
    assert rows["bwt"] == pytest.approx(((0.75 - 0.90) + (0.85 - 0.92)) / 2)
    assert rows["fwt"] == pytest.approx(((0.60 - 0.52) + (0.60 - 0.48)) / 2)
    assert rows["retention"] == pytest.approx((0.25 / 0.40 + 0.35 / 0.42) / 2)
    assert rows["pooled"] == pytest.approx(known_pooled("hybrid", 0, 2))


def test_aggregation_over_seeds(per_run) -> None:
    agg = aggregate(per_run)
    hybrid = _value(agg, method="hybrid", metric="image_auroc", quantity="acc")
    assert hybrid["mean"] == pytest.approx(0.86) and hybrid["std"] == pytest.approx(0.01)
    assert hybrid["count"] == 3
    stpm = _value(agg, method="stpm", metric="pixel_auroc", quantity="acc")
    # stpm: ACC = 0.7333 + 0.02 * seed - 0.05 over seeds 0, 1, 2
    assert stpm["mean"] == pytest.approx(0.73333333 + 0.02 - 0.05)
    assert stpm["std"] == pytest.approx(0.02)
    fm = _value(agg, method="stpm", metric="image_auroc", quantity="fm")
    assert fm["mean"] == pytest.approx(0.215) and fm["std"] == pytest.approx(0.0, abs=1e-12)


def test_matrix_aggregate_is_cellwise_mean(matrices) -> None:
    agg = next(a for a in aggregate_matrices(matrices)
               if a.method == "hybrid" and a.metric == "image_auroc")
    np.testing.assert_allclose(agg.mean, known_matrix("hybrid", 1))
    np.testing.assert_allclose(agg.std, np.full((3, 3), 0.01))
    assert (agg.count == 3).all()


def test_paired_comparison_of_the_hybrid(per_run) -> None:
    paired = paired_comparison(per_run)
    row = _value(paired, metric="image_auroc", quantity="acc", baseline="stpm")
    hybrid = [0.85 + 0.01 * s for s in range(3)]
    stpm = [0.73333333333 + 0.02 * s for s in range(3)]
    assert row["n"] == 3
    assert row["mean_diff"] == pytest.approx(np.mean(np.subtract(hybrid, stpm)))
    assert row["t_pvalue"] == pytest.approx(stats.ttest_rel(hybrid, stpm).pvalue, rel=1e-6)
    assert row["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(hybrid, stpm).pvalue)
    # FM differences are the same for every seed: the t-test is undefined (NaN), the
    # signed-rank test is not (3 negative differences: p = 2 / 2**3)
    fm = _value(paired, metric="image_auroc", quantity="fm", baseline="stpm")
    assert fm["mean_diff"] == pytest.approx(0.11 - 0.215) and np.isnan(fm["t_pvalue"])
    assert fm["wilcoxon_pvalue"] == pytest.approx(0.25)


def test_no_paired_comparison_with_two_seeds(tmp_path: Path) -> None:
    per_run = per_run_summary(build_matrices(load_runs(make_experiment(tmp_path, seeds=(0, 1),
                                                                       maps=False))))
    assert paired_comparison(per_run).empty


def test_running_run_has_nan_final_values_and_is_left_out(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path, seeds=(0, 1), maps=False)
    write_run(exp, "running-run", "hybrid", 2, steps=[0, 1], status="running")
    matrices = build_matrices(load_runs(exp), ["image_auroc"])
    running = next(m for m in matrices if m.run_id == "running-run")
    assert not running.complete and running.steps_done == 2
    assert np.isnan(running.R[2]).all()
    agg = aggregate(per_run_summary(matrices))
    acc = _value(agg, method="hybrid", quantity="acc")
    assert acc["count"] == 2 and acc["mean"] == pytest.approx(0.855)
    fwt = _value(agg, method="hybrid", quantity="fwt")  # defined from rows 0 and 1 already
    assert fwt["count"] == 3


def test_joint_has_only_the_final_row(tmp_path: Path) -> None:
    write_run(tmp_path / "exp", "joint-run", "hybrid", 0, strategy="joint")
    (m,) = build_matrices(load_runs(tmp_path / "exp"), ["image_auroc"])
    assert m.complete and m.expected_rows == [2]
    summary = per_run_summary([m]).set_index("quantity")["value"]
    assert summary["acc"] == pytest.approx(0.85)
    assert np.isnan(summary["fm"]) and np.isnan(summary["bwt"])


def test_one_position_naming_two_tasks_is_an_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "exp", "r1", "stpm", 0)
    csv_path = run / "records.csv"
    text = csv_path.read_text()
    lines = text.splitlines()
    fields = lines[1].split(",")
    fields[8] = "zipper"  # eval_task of eval_index 0 renamed on one row
    csv_path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"eval_index 0 names several tasks \['bottle', 'zipper'\]"):
        build_matrices(load_runs(run))
