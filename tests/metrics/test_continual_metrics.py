"""Continual metrics on hand-computed 3x3 and 4x4 result matrices, NaN entries and T = 1."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cl_bench.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    backward_transfer,
    final_average,
    forgetting,
    forgetting_measure,
    forward_transfer,
    intransigence,
    lower_triangle_average,
    mean_retention,
    pooled_image_auroc,
    pooled_image_metrics,
    retention,
    retention_excluded,
    retention_interval,
    retention_ratio,
    summarize,
)
from cl_bench.metrics.continual import RETENTION_MARGIN, chance_level

nan = math.nan
R3 = np.array([[0.90, 0.50, 0.60],
               [0.70, 0.95, 0.55],
               [0.60, 0.80, 0.85]])
B3 = np.array([0.50, 0.52, 0.58])
# R4[0, 2] = 0.99 (zero-shot, before task 2 is learnt) must not count as forgetting of task 2
R4 = np.array([[0.80, 0.60, 0.99, 0.50],
               [0.70, 0.90, 0.70, 0.60],
               [0.65, 0.85, 0.90, nan],
               [0.60, 0.70, 0.80, 0.95]])


def test_3x3_by_hand() -> None:
    assert final_average(R3) == pytest.approx((0.6 + 0.8 + 0.85) / 3)
    assert lower_triangle_average(R3) == pytest.approx(4.8 / 6)
    np.testing.assert_allclose(forgetting(R3), [0.3, 0.15, nan])
    assert forgetting_measure(R3) == pytest.approx(0.225)
    assert backward_transfer(R3) == pytest.approx((-0.3 - 0.15) / 2)
    assert forward_transfer(R3, B3) == pytest.approx((-0.02 - 0.03) / 2)
    np.testing.assert_allclose(retention(R3), [0.25, 0.3 / 0.45, 1.0])
    assert mean_retention(R3) == pytest.approx((0.25 + 0.3 / 0.45) / 2)
    # weighted mean over j < T-1 of f_j = (0.25, 0.3/0.45), weights w_j = gain - 0.05 = (0.35, 0.4)
    expected = (0.35 * 0.25 + 0.40 * 0.3 / 0.45) / (0.35 + 0.40)
    assert retention_ratio(R3) == pytest.approx(expected)
    assert summarize(R3)["retention"] == pytest.approx(expected)
    np.testing.assert_allclose(intransigence(R3, [0.95, 0.97, 0.9]), [0.05, 0.02, 0.05],
                               atol=1e-15)


def test_4x4_with_nan_entries_by_hand() -> None:
    np.testing.assert_allclose(forgetting(R4), [0.2, 0.2, 0.1, nan])  # not 0.99 - 0.8
    assert forgetting_measure(R4) == pytest.approx(0.5 / 3)
    assert backward_transfer(R4) == pytest.approx(-0.5 / 3)
    # R4[2, 3] is NaN: FWT averages the two defined terms only
    assert forward_transfer(R4, 0.5) == pytest.approx((0.1 + 0.2) / 2)
    assert lower_triangle_average(R4) == pytest.approx(7.85 / 10)
    assert final_average(R4) == pytest.approx(3.05 / 4)
    assert mean_retention(R4) == pytest.approx((1 / 3 + 0.5 + 0.75) / 3)
    # f = (1/3, 0.5, 0.75), w = gain - 0.05 = (0.25, 0.35, 0.35)
    assert summarize(R4)["retention"] == pytest.approx(
        (0.25 / 3 + 0.35 * 0.5 + 0.35 * 0.75) / 0.95)
    summary = summarize(R4, baseline=np.full(4, 0.5), reference=0.95)
    assert set(summary) == {"acc", "lower_triangle", "fm", "bwt", "fwt", "retention",
                            "retention_low", "retention_high", "retention_excluded",
                            "intransigence"}
    assert summary["retention_excluded"] == 0
    assert 0 <= summary["retention_low"] <= summary["retention"] <= summary["retention_high"] <= 1
    assert summary["intransigence"] == pytest.approx((0.15 + 0.05 + 0.05 + 0.0) / 4)


def test_nan_where_nothing_is_defined() -> None:
    R = R4.copy()
    R[3, 0] = nan  # task 0 not evaluated at the end
    assert math.isnan(forgetting(R)[0])
    assert forgetting_measure(R) == pytest.approx((0.2 + 0.1) / 2)
    R[:, 1] = nan  # a column never evaluated
    assert math.isnan(forgetting(R)[1])
    assert math.isnan(retention(R)[1])
    assert math.isnan(final_average(np.full((2, 2), nan)))


def test_retention_is_nan_when_nothing_was_learnt_above_chance() -> None:
    R = np.array([[0.45, 0.5], [0.6, 0.9]])
    with pytest.warns(UndefinedMetricWarning, match=r"task\(s\) \[0\]"):
        assert math.isnan(retention(R)[0])  # R[0, 0] <= 0.5: the ratio is meaningless
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(mean_retention(R))


def test_retention_margin_boundary() -> None:
    """A task weighs max(gain - margin, 0): at the margin it is excluded (per-task f_j NaN with a
    warning), just above it it enters with a tiny weight; alone it gives its own f_j."""
    assert RETENTION_MARGIN == 0.05
    at = np.array([[0.55, 0.5], [0.54, 0.9]])  # learnt 0.05, kept 0.04
    with pytest.warns(UndefinedMetricWarning, match="at most 0.05 above"):
        assert math.isnan(retention(at)[0])
    with pytest.warns(UndefinedMetricWarning, match="no task before the last"):
        assert math.isnan(retention_ratio(at))
    assert retention_excluded(at) == 1
    above = np.array([[0.56, 0.5], [0.54, 0.9]])  # learnt 0.06, kept 0.04
    assert retention(above)[0] == pytest.approx(0.04 / 0.06)
    assert retention_ratio(above) == pytest.approx(0.04 / 0.06)
    # AU-PRO at FPR limit 0.3: chance 0.15, the same margin in AU-PRO points
    pro = np.array([[0.21, 0.1], [0.19, 0.5]])
    assert retention_ratio(pro, chance=0.15) == pytest.approx(0.04 / 0.06)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(retention_ratio(pro - 0.012, chance=0.15))


def _with_task_b(gain_b: float, final_b: float) -> np.ndarray:
    """Task a learnt 0.4 above chance and kept 0.2 (f_a = 0.5); task b as given."""
    return np.array([[0.9, 0.5, 0.5], [0.8, 0.5 + gain_b, 0.5], [0.7, final_b, 0.9]])


def test_retention_is_continuous_across_the_margin() -> None:
    """The issue's cases: a gain of 0.055 ending at 0.9 used to give 7.27 and 0.049 NaN. Now
    task b's weight grows from 0 at the margin, so rho moves from f_a = 0.5 by a hair."""
    values = [retention_ratio(_with_task_b(gain, 0.9)) for gain in (0.049, 0.05, 0.0501, 0.055)]
    assert values[0] == pytest.approx(0.5) and values[1] == pytest.approx(0.5)
    assert values[2] == pytest.approx(0.5, abs=1e-3)
    assert values[3] == pytest.approx((0.35 * 0.5 + 0.005 * 1.0) / 0.355)
    assert all(np.diff(values) >= 0) and max(values) < 0.52


def test_a_task_below_chance_is_excluded_not_eight() -> None:
    """R[j, j] = 0.45 (below chance) ending at 0.9 used to give 8.0; it now weighs 0."""
    R = _with_task_b(-0.05, 0.9)
    assert retention_ratio(R) == pytest.approx(0.5)
    assert retention_excluded(R) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.3, 1.0), min_size=9, max_size=9),
       st.sampled_from([0.0, 0.049, 0.05, 0.0501, 0.055]))
def test_retention_stays_in_its_range_on_adversarial_matrices(cells: list[float],
                                                              near: float) -> None:
    """Any R (entries below chance, gains at and around the margin): rho and its bootstrap
    interval within [0, 1], rho inside its interval."""
    R = np.array(cells).reshape(3, 3)
    R[0, 0] = 0.5 + near  # a gain at/around the margin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        rho = retention_ratio(R)
        low, high = retention_interval(R)
        per_task = retention(R)
    assert np.isnan(rho) or 0.0 <= rho <= 1.0
    assert np.all(np.isnan(per_task) | ((per_task >= 0) & (per_task <= 1)))
    if np.isfinite(low):
        assert 0.0 <= low <= rho + 1e-12 and rho - 1e-12 <= high <= 1.0


def test_retention_interval_is_a_bootstrap_over_tasks() -> None:
    R = np.array([[0.9, 0.5, 0.5, 0.5], [0.8, 0.9, 0.5, 0.5], [0.7, 0.8, 0.9, 0.5],
                  [0.6, 0.9, 0.7, 0.9]])
    low, high = retention_interval(R)
    assert 0.0 <= low < retention_ratio(R) < high <= 1.0
    assert retention_interval(R) == (low, high)  # fixed seed: the same interval every time
    assert all(math.isnan(v) for v in retention_interval(R3[:2, :2]))  # one task: no interval


def test_chance_levels_follow_the_fpr_limit() -> None:
    assert chance_level("image_auroc") == 0.5 and chance_level("pixel_auroc", 0.05) == 0.5
    assert chance_level("au_pro") == pytest.approx(0.15)
    assert chance_level("au_pro", 0.3) == pytest.approx(0.15)
    assert chance_level("au_pro", 0.05) == pytest.approx(0.025)
    assert chance_level("image_ap") is None and chance_level("pixel_f1_max") is None
    with pytest.raises(MetricInputError, match="fpr_limit"):
        chance_level("au_pro", 0.0)


def test_single_task() -> None:
    R = np.array([[0.9]])
    summary = summarize(R, baseline=[0.5])
    assert summary["acc"] == 0.9 and summary["lower_triangle"] == 0.9
    for key in ("fm", "bwt", "fwt", "retention"):
        assert math.isnan(summary[key]), key
    assert math.isnan(forgetting(R)[0])


def test_fwt_without_baseline_is_nan_and_bad_shapes_are_rejected() -> None:
    assert math.isnan(summarize(R3)["fwt"])
    with pytest.raises(MetricInputError, match="square"):
        final_average(np.zeros((2, 3)))
    with pytest.raises(MetricInputError, match=r"baseline.*\(3,\)"):
        forward_transfer(R3, [0.5, 0.5])
    with pytest.raises(MetricInputError, match="infinite"):
        final_average(np.array([[np.inf]]))


def test_pooled_image_auroc_ranks_tasks_together() -> None:
    # each task alone is perfectly ranked, but task 1's scores sit above task 0's
    scores = {0: [0.1, 0.2, 0.3, 0.4], 1: [1.1, 1.2, 1.3, 1.4]}
    labels = {0: [0, 0, 1, 1], 1: [0, 0, 1, 1]}
    assert pooled_image_auroc(scores, labels, upto=0) == 1.0
    # pairs (defect, good): task1 defects beat all 4 goods (8), task0 defects beat 2 of 4 (4)
    assert pooled_image_auroc(scores, labels, upto=1) == pytest.approx(12 / 16)
    assert pooled_image_auroc(list(scores.values()), list(labels.values()), 1) == 12 / 16


def test_pooled_image_metrics_are_the_runs_pooled_records() -> None:
    scores = {0: np.array([0.1, 0.2, 0.3, 0.4], np.float32), 2: np.array([1.1, 1.2, 1.3, 1.4])}
    labels = {0: np.array([0, 0, 1, 1]), 2: np.array([0, 0, 1, 1])}
    pooled = pooled_image_metrics(scores, labels, upto=2)
    assert pooled["image_auroc"] == pytest.approx(12 / 16)
    # AP: ranked 1.4 1.3 (defects) 1.2 1.1 (goods) 0.4 0.3 (defects): (1 + 1 + 3/5 + 4/6) / 4
    assert pooled["image_ap"] == pytest.approx((2 + 3 / 5 + 4 / 6) / 4)
    assert pooled_image_metrics(scores, labels, upto=0)["image_auroc"] == 1.0
    assert pooled_image_metrics(scores, labels, upto=-1) == {}


@pytest.mark.filterwarnings("ignore::cl_bench.metrics.UndefinedMetricWarning")
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_against_plain_loops(T: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    R, b = rng.uniform(0.3, 1.0, (T, T)), rng.uniform(0.3, 0.7, T)
    f = [max(R[step, j] for step in range(j, T - 1)) - R[T - 1, j] for j in range(T - 1)]
    bwt = [R[T - 1, j] - R[j, j] for j in range(T - 1)]
    fwt = [R[j - 1, j] - b[j] for j in range(1, T)]
    s = summarize(R, baseline=b)
    for key, terms in (("fm", f), ("bwt", bwt), ("fwt", fwt)):
        if terms:
            assert s[key] == pytest.approx(sum(terms) / len(terms), rel=1e-12, abs=1e-15)
        else:
            assert math.isnan(s[key])
    assert s["acc"] == pytest.approx(sum(R[T - 1]) / T)
