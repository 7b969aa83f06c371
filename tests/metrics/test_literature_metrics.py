"""The literature's metrics on a (steps, categories) matrix, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cl_bench.metrics.inputs import MetricInputError
from cl_bench.metrics.literature import a_auroc, final_mean, fm_versus_joint, seen_columns

NAN = float("nan")
# 2 tasks: task 0 = columns 0, 1 (the base), task 1 = column 2
R = np.array([[0.9, 0.7, 0.5],
              [0.8, 0.6, 1.0]])
GROUPS = [[0, 1], [2]]


def test_final_mean_is_the_last_row_over_all_categories():
    assert final_mean(R) == pytest.approx((0.8 + 0.6 + 1.0) / 3)


def test_a_auroc_averages_each_step_over_the_categories_seen():
    assert seen_columns(GROUPS, 0) == [0, 1] and seen_columns(GROUPS, 1) == [0, 1, 2]
    # step 0: (0.9 + 0.7) / 2 = 0.8 (column 2, not yet seen, is left out); step 1: 0.8
    assert a_auroc(R, GROUPS) == pytest.approx(0.8)
    assert a_auroc(R, [[0], [1, 2]]) == pytest.approx((0.9 + 0.8) / 2)


def test_a_auroc_is_undefined_for_a_joint_run_and_checks_the_rows():
    joint = np.array([[NAN, NAN, NAN], [0.8, 0.6, 1.0]])
    assert math.isnan(a_auroc(joint, GROUPS))
    with pytest.raises(MetricInputError, match="one row per training step"):
        a_auroc(R, [[0], [1], [2]])


def test_fm_versus_joint_is_the_gap_to_the_joint_model():
    assert fm_versus_joint([0.8, 0.6, 1.0], [0.9, 0.9, 0.9]) == pytest.approx(
        (0.1 + 0.3 - 0.1) / 3)
    with pytest.raises(MetricInputError, match="one value per category"):
        fm_versus_joint([0.8], [0.9, 0.9])
