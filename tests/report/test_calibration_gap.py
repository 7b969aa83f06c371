"""The calibration gap in the report: ACC - pooled from the per-run summary, and the same of
the raw scores where a calibrated run recorded ``image_auroc_uncalibrated``."""

from __future__ import annotations

import pandas as pd
import pytest

from cl_bench.report.statistics import calibration_gaps
from cl_bench.report.tables import summary_table

KEY = {"run_id": "r1", "method": "stpm", "strategy": "routing", "task_aware": False, "seed": 0,
       "order": "alphabetical"}


def _per_run() -> pd.DataFrame:
    rows = [{**KEY, "metric": metric, "quantity": quantity, "value": value}
            for metric, quantity, value in (("image_auroc", "acc", 0.80),
                                            ("image_auroc", "pooled", 0.70),
                                            ("pixel_auroc", "acc", 0.90),
                                            ("pixel_auroc", "pooled", float("nan")))]
    return pd.DataFrame(rows)


def _records() -> pd.DataFrame:
    rows = []
    for step, values in ((0, (0.5, None)), (1, (0.9, 0.6))):  # only the final step counts
        per_task = [(0, "a", values[0]), (1, "b", values[1])]
        for j, task, value in per_task:
            if value is not None:
                rows.append({**KEY, "step": step, "eval_task": task, "eval_index": j,
                             "metric": "image_auroc_uncalibrated", "value": value})
        rows.append({**KEY, "step": step, "eval_task": "pooled", "eval_index": -1,
                     "metric": "image_auroc_uncalibrated", "value": 0.5 + 0.05 * step})
    return pd.DataFrame(rows)


def test_gap_and_uncalibrated_gap_from_records() -> None:
    gaps = calibration_gaps(_records(), _per_run()).set_index(["metric", "quantity"])["value"]
    assert gaps[("image_auroc", "gap")] == pytest.approx(0.10)
    assert gaps[("image_auroc", "pooled_uncalibrated")] == pytest.approx(0.55)
    assert gaps[("image_auroc", "gap_uncalibrated")] == pytest.approx(0.75 - 0.55)
    assert ("pixel_auroc", "gap") not in gaps.index  # no pooled pixel metric, no gap


def test_summary_table_shows_the_gap_columns() -> None:
    per_run = pd.concat([_per_run(), calibration_gaps(_records(), _per_run())])
    agg = (per_run.groupby(["method", "strategy", "task_aware", "metric", "quantity"])["value"]
           .agg(mean="mean", std="std", count="count").reset_index())
    table = summary_table(agg, "image_auroc")
    assert table.column_ids[-3:] == ["gap", "pooled_uncalibrated", "gap_uncalibrated"]
    assert not table.bold[:, -3:].any()


def test_no_gap_columns_without_a_calibrated_run() -> None:
    records = _records()
    records = records[records["metric"] != "image_auroc_uncalibrated"]
    assert calibration_gaps(records, _per_run()).empty
