"""Continual anomaly-detection metrics as the literature defines them, from a category matrix.

``R`` here is (steps, categories): row i = evaluation after training task i, column c = one
category (a task may hold several, ``data.tasks``); ``groups[i]`` lists the columns of task i.
With one category per task ``R`` is cl-bench's square matrix. NaN entries are left out of the
means (nanmean); a mean over nothing is NaN. Formulas and sources: docs/metrics.md, "Metrics as
the literature reports them".

- :func:`final_mean`: IUF (Tang et al., ECCV 2024) and CDAD (Li et al., CVPR 2025) report the
  image and pixel AUROC averaged over all categories after the final step,
  ``(1/C) sum_c R[T-1, c]``; UCAD (Liu et al., AAAI 2024) and ReplayCAD (Hu et al., IJCAI
  2025) tabulate the same final average per metric (image AUROC, pixel AP).
- :func:`a_auroc`: CDAD's A-AUROC, the mean over steps of the average over the categories
  seen so far, ``(1/T) sum_i mean_{c in seen(i)} R[i, c]``.
- :func:`fm_versus_joint`: ReplayCAD's FM, the gap to a model trained on the real data of
  every class, ``(1/C) sum_c (J[c] - R[T-1, c])`` with ``J`` the final row of a joint run.

UCAD's FM (the gap between the results with a large and with a small memory bank, both after
the last task; its repository's README, "Parameter") is a property of UCAD's memory, not of a
continual run, and has no function here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cl_bench.metrics.inputs import MetricInputError


def _rows(R: Any) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] == 0 or R.shape[1] == 0:
        raise MetricInputError(f"R must be (steps, categories) with both >= 1, got {R.shape}")
    return R


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float("nan") if values.size == 0 or np.isnan(values).all() else float(
        np.nanmean(values))


def final_mean(R: Any) -> float:
    """``(1/C) sum_c R[T-1, c]``: the final step's value averaged over all categories."""
    return _nanmean(_rows(R)[-1])


def seen_columns(groups: Sequence[Sequence[int]], step: int) -> list[int]:
    """The columns of tasks 0..step (the categories seen after training task ``step``)."""
    return [j for cols in groups[: step + 1] for j in cols]


def a_auroc(R: Any, groups: Sequence[Sequence[int]]) -> float:
    """CDAD's A-AUROC: ``(1/T) sum_{i<T} mean_{c in seen(i)} R[i, c]``, T = len(groups).

    NaN when a step's row has no defined value among its seen categories (a joint run has only
    the final row: its A-AUROC is undefined)."""
    R = _rows(R)
    if R.shape[0] != len(groups):
        raise MetricInputError(f"R has {R.shape[0]} rows but there are {len(groups)} tasks; "
                               "one row per training step")
    per_step = [_nanmean(R[i, seen_columns(groups, i)]) for i in range(len(groups))]
    return float("nan") if np.isnan(per_step).any() else float(np.mean(per_step))


def fm_versus_joint(final_row: Any, joint_row: Any) -> float:
    """ReplayCAD's FM: ``(1/C) sum_c (J[c] - R[T-1, c])``, J the joint model's final values."""
    final = np.asarray(final_row, dtype=np.float64)
    joint = np.asarray(joint_row, dtype=np.float64)
    if final.shape != joint.shape:
        raise MetricInputError(f"final row {final.shape} and joint row {joint.shape} differ "
                               "in length; both hold one value per category")
    return _nanmean(joint - final)
