"""Result matrices, per-run continual metrics, aggregation over seeds, the paired comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fabricate import BASELINE, known_matrix, known_pooled, make_experiment, write_run
from scipy import stats

from cl_bench.errors import DataError
from cl_bench.records import COLUMN_TYPES, RUN_KEY, RunKey
from cl_bench.report import load_runs
from cl_bench.report.compare import paired_comparison
from cl_bench.report.labels import METRIC_ORDER, metric_label
from cl_bench.report.matrices import aggregate_matrices, build_matrices, metrics_present
from cl_bench.report.statistics import (
    WILCOXON_TOO_FEW,
    aggregate,
    holm_adjust,
    per_run_summary,
    wilcoxon_min_pairs,
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


def test_a_matrix_is_its_run_key_with_the_types_records_declare(matrices) -> None:
    """RunMatrix extends the records' RunKey: its key is the report's one run key, every value
    of the type Record declares (not the numpy scalars of a pandas group key)."""
    for m in matrices:
        assert isinstance(m, RunKey)
        assert tuple(m.key()) == RUN_KEY
        assert all(type(value) is COLUMN_TYPES[name] for name, value in m.key().items())


def test_per_run_metrics_match_hand_computation(per_run) -> None:
    # hybrid seed 0: R = [[.90,.60,.55],[.80,.92,.60],[.75,.85,.95]], b = [.50,.52,.48]
    rows = per_run[(per_run["method"] == "hybrid") & (per_run["seed"] == 0)
                   & (per_run["metric"] == "image_auroc")].set_index("quantity")["value"]
    assert rows["acc"] == pytest.approx((0.75 + 0.85 + 0.95) / 3)
    assert rows["fm"] == pytest.approx(((0.90 - 0.75) + (0.92 - 0.85)) / 2)
    assert rows["bwt"] == pytest.approx(((0.75 - 0.90) + (0.85 - 0.92)) / 2)
    assert rows["fwt"] == pytest.approx(((0.60 - 0.52) + (0.60 - 0.48)) / 2)
    # f_j = kept / learnt = (0.25/0.40, 0.35/0.42), weights w_j = learnt - 0.05 = (0.35, 0.37)
    assert rows["retention"] == pytest.approx(
        (0.35 * 0.25 / 0.40 + 0.37 * 0.35 / 0.42) / (0.35 + 0.37))
    assert rows["retention_excluded"] == 0
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
    # 3 pairs: the signed-rank test's smallest two-sided p is 2 / 2**3 = 0.25, never significant
    assert np.isnan(row["wilcoxon_pvalue"]) and row["wilcoxon_note"] == WILCOXON_TOO_FEW
    # FM differences are the same for every seed: the t-test is undefined (NaN)
    fm = _value(paired, metric="image_auroc", quantity="fm", baseline="stpm")
    assert fm["mean_diff"] == pytest.approx(0.11 - 0.215) and np.isnan(fm["t_pvalue"])
    # Holm over every defined t-test of the table
    defined = paired["t_pvalue"].notna()
    np.testing.assert_allclose(paired.loc[defined, "t_pvalue_holm"],
                               holm_adjust(paired.loc[defined, "t_pvalue"]))
    assert (paired.loc[defined, "t_pvalue_holm"] >= paired.loc[defined, "t_pvalue"]).all()


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


def test_f1_max_metrics_have_labels_and_an_order() -> None:
    assert metric_label("image_f1_max") == "Image F1-max"
    assert metric_label("pixel_f1_max") == "Pixel F1-max"
    assert metric_label("au_pro", 0.05) == "AU-PRO (0.05)"
    df = pd.DataFrame({"metric": ["pixel_f1_max", "image_f1_max", "au_pro", "image_auroc"]})
    assert metrics_present(df) == ["image_auroc", "au_pro", "image_f1_max", "pixel_f1_max"]
    assert METRIC_ORDER.index("image_f1_max") < METRIC_ORDER.index("pixel_f1_max")


def test_intransigence_against_the_cumulative_run_of_the_same_seed_and_order(
        tmp_path: Path) -> None:
    """R*_k = R[k, k] of the cumulative run (tasks 0..k) of the same detector, seed and order;
    a joint run is never substituted; runs without their cumulative run get no value and are
    named in a warning (the report's notes)."""
    exp = make_experiment(tmp_path, seeds=(0, 1), maps=False)
    write_run(exp, "cumulative-hybrid-1", "hybrid", 1, strategy="cumulative", shift=0.03)
    write_run(exp, "cumulative-hybrid-1-other-order", "hybrid", 1, strategy="cumulative",
              order="reversed", shift=0.2)
    write_run(exp, "joint-hybrid-0", "hybrid", 0, strategy="joint", shift=0.04)
    with pytest.warns(UserWarning, match="These runs have none") as caught:
        per_run = per_run_summary(build_matrices(load_runs(exp), ["image_auroc"]))
    named = (str(caught[0].message).split("no intransigence: ")[1]
             .split("; run the experiment")[0].split(", "))
    assert sorted(named) == ["hybrid/naive seed 0 order alphabetical",
                             "stpm/naive seed 0 order alphabetical",
                             "stpm/naive seed 1 order alphabetical"]
    intransigence = per_run[per_run["quantity"] == "intransigence"]
    # only hybrid seed 1 has a cumulative run; references (cumulative, joint) get none
    assert list(zip(intransigence["method"], intransigence["strategy"], intransigence["seed"],
                    strict=True)) == [("hybrid", "naive", 1)]
    # by hand: the cumulative run's diagonal minus the naive run's diagonal, mean over k
    cumulative_diagonal = np.diag(known_matrix("hybrid", 1)) + 0.03
    naive_diagonal = np.diag(known_matrix("hybrid", 1))
    assert intransigence["value"].iloc[0] == pytest.approx(
        np.mean(cumulative_diagonal - naive_diagonal))
    assert intransigence["value"].iloc[0] == pytest.approx(0.03)


def test_without_a_cumulative_run_there_is_no_intransigence_and_a_note(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path, seeds=(0, 1), maps=False)
    write_run(exp, "joint-hybrid-0", "hybrid", 0, strategy="joint")
    with pytest.warns(UserWarning, match="No run has one, so the column is absent"):
        per_run = per_run_summary(build_matrices(load_runs(exp), ["image_auroc"]))
    assert "intransigence" not in set(per_run["quantity"])


# ---------------------------------------------------------------- the paired tests, fabricated
def fabricated_per_run(values: dict[tuple[str, str, int], float], *, strategy: str = "naive",
                       task_aware: bool = False, quantity: str = "acc",
                       shuffle: int | None = 0) -> pd.DataFrame:
    """Per-run rows {(method, order, seed): value}; run ids sort opposite to the seeds, and the
    rows are shuffled, so that any pairing by position or sorting goes wrong."""
    rows = [{"run_id": f"{method}-{99 - seed}-{order}", "method": method, "strategy": strategy,
             "task_aware": task_aware, "seed": seed, "order": order, "metric": "image_auroc",
             "quantity": quantity, "value": value, "status": "complete",
             "run_dir": f"/results/x/{method}-{order}-{seed}"}
            for (method, order, seed), value in values.items()]
    frame = pd.DataFrame(rows)
    if shuffle is not None:
        frame = frame.sample(frac=1.0, random_state=shuffle).reset_index(drop=True)
    return frame


#: stpm per (order, seed), in close couples; hybrid = stpm + a difference that varies by pair,
#: so that hybrid ranks the runs differently from stpm: pairing the sorted values (or the runs
#: in any order but the key's) gives other differences and another p
STPM = {("alphabetical", 0): 0.700, ("alphabetical", 1): 0.705, ("alphabetical", 2): 0.800,
        ("reversed", 0): 0.806, ("reversed", 1): 0.900, ("reversed", 2): 0.903}
DIFF = {("alphabetical", 0): 0.030, ("alphabetical", 1): 0.010, ("alphabetical", 2): 0.012,
        ("reversed", 0): 0.028, ("reversed", 1): 0.031, ("reversed", 2): 0.009}
HYBRID = {key: STPM[key] + DIFF[key] for key in STPM}


def _sweep_values() -> dict[tuple[str, str, int], float]:
    values = {("hybrid", o, s): v for (o, s), v in HYBRID.items()}
    values.update({("stpm", o, s): v for (o, s), v in STPM.items()})
    return values


def test_pairs_are_matched_by_strategy_order_and_seed_not_by_sorting() -> None:
    values = _sweep_values()
    keys = sorted(HYBRID)
    ref = np.array([values[("hybrid", *k)] for k in keys])
    base = np.array([values[("stpm", *k)] for k in keys])
    # the fabricated values make a pairing bug visible: pairing the sorted values (or the runs
    # sorted by run id) gives clearly different p-values
    by_value = stats.ttest_rel(np.sort(ref), np.sort(base)).pvalue
    by_run_id = stats.ttest_rel(ref, base[::-1]).pvalue
    right = stats.ttest_rel(ref, base).pvalue
    assert right == pytest.approx(0.0059, abs=1e-4)
    assert by_value == pytest.approx(0.0015, abs=1e-4) and by_run_id > 0.5
    for shuffle in (0, 1, 2):
        row = paired_comparison(fabricated_per_run(values, shuffle=shuffle)).iloc[0]
        assert row["n"] == 6
        assert row["t_pvalue"] == pytest.approx(right, rel=1e-9)
        assert row["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(ref, base).pvalue)
        assert row["mean_diff"] == pytest.approx(np.mean(ref - base))


def test_an_order_missing_for_one_method_leaves_those_seeds_unpaired() -> None:
    values = _sweep_values()
    del values[("stpm", "reversed", 2)]
    row = paired_comparison(fabricated_per_run(values)).iloc[0]
    keys = [k for k in sorted(HYBRID) if k != ("reversed", 2)]
    ref = [values[("hybrid", *k)] for k in keys]
    base = [values[("stpm", *k)] for k in keys]
    assert row["n"] == 5 and row["wilcoxon_note"] == WILCOXON_TOO_FEW
    assert row["t_pvalue"] == pytest.approx(stats.ttest_rel(ref, base).pvalue, rel=1e-9)


def test_wilcoxon_from_six_pairs_only() -> None:
    assert wilcoxon_min_pairs(0.05) == 6  # 2/2**5 = 0.0625, 2/2**6 = 0.031
    assert wilcoxon_min_pairs(0.01) == 8  # 2/2**7 = 0.0156, 2/2**8 = 0.0078
    six = paired_comparison(fabricated_per_run(_sweep_values())).iloc[0]
    assert six["wilcoxon_pvalue"] == pytest.approx(2 / 2**6) and six["wilcoxon_note"] == ""


def test_holm_adjustment_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.2 (m = 4): 4*0.01, max(.04, 3*.02), max(.06, 2*.03), max(.06, .2)
    adjusted = holm_adjust([0.03, 0.2, 0.01, np.nan, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.2, 0.04, np.nan, 0.06])
    np.testing.assert_allclose(holm_adjust([0.5, 0.9]), [1.0, 1.0])
    assert holm_adjust([]).size == 0


def test_task_aware_runs_are_paired_apart() -> None:
    values = _sweep_values()
    aware = {k: v + 0.05 * (k[0] == "hybrid") for k, v in values.items()}
    per_run = pd.concat([fabricated_per_run(values),
                         fabricated_per_run(aware, task_aware=True).assign(
                             run_id=lambda f: f["run_id"] + "-aware",
                             run_dir=lambda f: f["run_dir"] + "-aware")])
    paired = paired_comparison(per_run)
    assert sorted(paired["task_aware"]) == [False, True]
    plain = _value(paired, task_aware=False)
    oracle = _value(paired, task_aware=True)
    assert plain["n"] == oracle["n"] == 6
    assert oracle["mean_diff"] == pytest.approx(plain["mean_diff"] + 0.05)


def test_incomplete_runs_are_not_paired_and_duplicates_are_an_error() -> None:
    per_run = fabricated_per_run(_sweep_values())
    running = per_run["run_id"] == "hybrid-99-alphabetical"
    per_run.loc[running, "status"] = "running"
    assert paired_comparison(per_run).iloc[0]["n"] == 5
    per_run.loc[running, "status"] = "complete"
    twin = per_run[running].assign(run_id="hybrid-again", run_dir="/results/x/again")
    with pytest.raises(DataError, match=r"hybrid/naive seed 0 order alphabetical.*"
                                        r"/results/x/hybrid-alphabetical-0, /results/x/again"):
        paired_comparison(pd.concat([per_run, twin]))


def test_independent_run_is_complete_with_its_lower_triangle(tmp_path: Path) -> None:
    """One detector per task: after step i only tasks j <= i have a detector to test."""
    run = write_run(tmp_path / "exp", "oracle", "hybrid", 0, strategy="independent",
                    task_aware=True)
    records = pd.read_csv(run / "records.csv")
    upper = (records["step"] >= 0) & (records["eval_index"] > records["step"])
    records[~upper].to_csv(run / "records.csv", index=False)
    (m,) = build_matrices(load_runs(tmp_path / "exp"), ["image_auroc"])
    assert m.complete and m.steps_done == 3
    lower = (records["step"] == 2) & (records["eval_index"] == 1)
    records[~upper & ~lower].to_csv(run / "records.csv", index=False)
    (m,) = build_matrices(load_runs(tmp_path / "exp"), ["image_auroc"])
    assert not m.complete


def test_wilcoxon_guard_counts_the_non_zero_differences() -> None:
    """Six pairs, one with a zero difference: the signed-rank test drops it, leaving 5 non-zero
    differences whose smallest p is 2 / 2**5 = 0.0625 > 0.05, so the table says "n too small"
    (counting all six pairs would report p = 0.0625 instead)."""
    values = _sweep_values()
    values[("hybrid", "reversed", 2)] = values[("stpm", "reversed", 2)]
    row = paired_comparison(fabricated_per_run(values)).iloc[0]
    assert row["n"] == 6
    assert np.isnan(row["wilcoxon_pvalue"]) and row["wilcoxon_note"] == WILCOXON_TOO_FEW


def _holm_by_definition(pvalues: list[float]) -> list[float]:
    """Holm (1979) written out step by step, independently of ``holm_adjust``: the k-th
    smallest of m p-values gets max_{i <= k} min(1, (m - i + 1) p_(i)) (1-based i)."""
    m = len(pvalues)
    ranked = sorted(range(m), key=lambda index: pvalues[index])
    adjusted = [0.0] * m
    running = 0.0
    for i, index in enumerate(ranked, start=1):
        running = max(running, min(1.0, (m - i + 1) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def test_holm_over_the_table_equals_the_definition_with_its_running_maximum() -> None:
    """Holm's p of every t-test in a table of several strategies, computed by hand; the data
    are such that the running maximum changes at least one adjusted p (removing it fails)."""
    frames = []
    # naive and ewc have nearly equal p (ewc's a little smaller): 4 p_ewc > 3 p_naive, so
    # naive's Holm p is ewc's, raised by the running maximum
    for strategy, shift in (("naive", 0.0), ("ewc", 0.0005), ("replay", -0.008),
                            ("si", -0.015)):
        values = {("stpm", o, s): v for (o, s), v in STPM.items()}
        values.update({("hybrid", o, s): STPM[(o, s)] + DIFF[(o, s)] + shift
                       for (o, s) in STPM})
        frames.append(fabricated_per_run(values, strategy=strategy).assign(
            run_id=lambda f, name=strategy: f["run_id"] + name,
            run_dir=lambda f, name=strategy: f["run_dir"] + name))
    paired = paired_comparison(pd.concat(frames, ignore_index=True))
    raw = paired["t_pvalue"].tolist()
    assert len(raw) == 4 and all(np.isfinite(raw))
    expected = _holm_by_definition(raw)
    m = len(raw)
    scaled = {index: min(1.0, (m - rank) * raw[index])
              for rank, index in enumerate(sorted(range(m), key=lambda i: raw[i]))}
    assert any(expected[i] > scaled[i] for i in range(m)), "data must exercise the running max"
    np.testing.assert_allclose(paired["t_pvalue_holm"], expected, rtol=1e-12)
