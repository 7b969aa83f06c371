"""Statistics of runs: per-run continual metrics, their mean over seeds and orders, paired tests.

Per run, :func:`cl_bench.metrics.continual.summarize` turns R (:mod:`cl_bench.report.matrices`)
into ACC, FM, BWT, FWT, retention and (with a cumulative run of the same detector, seed and
order) intransigence; this module aggregates the per-run numbers over seeds and task orders
(mean, sample standard deviation, count) and holds the paired tests and Holm's correction that
:mod:`cl_bench.report.compare` applies to any pair of strategies or detectors
(docs/statistics.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cl_bench.errors import DataError
from cl_bench.metrics.continual import chance_level, summarize
from cl_bench.metrics.inputs import MetricInputError
from cl_bench.records import POOLED, RUN_KEY, SIDE_METRICS
from cl_bench.report.labels import ROUTING_DIAGNOSTICS, SIDE_QUANTITIES, UNCALIBRATED_METRIC
from cl_bench.report.matrices import RunMatrix
from cl_bench.report.strategy_kinds import is_reference, is_task_aware, stream_of

#: significance level of the paired tests (bold where the Holm-adjusted p is below it)
ALPHA = 0.05
#: what a table row aggregates over seeds and orders: the run key less the run's own id, seed
#: and task order
CONFIG_KEY = tuple(k for k in RUN_KEY if k not in ("run_id", "seed", "order"))


def summarize_run(matrix: RunMatrix,
                  reference: np.ndarray | None = None) -> dict[str, float]:
    """Continual metrics of one run: ``summarize(R, baseline, reference)`` plus the final
    pooled value, with the chance level of the run's metric and FPR limit.

    ``summarize`` leaves NaN cells out of its means, so a run still running contributes what its
    evaluated rows define (FWT after two steps, say) and NaN for what needs the final row.
    Warnings (retention near chance) are re-issued with the run named.
    """
    baseline = matrix.baseline if np.isfinite(matrix.baseline).any() else None
    where = (f"run {matrix.run_id} ({matrix.method}/{matrix.strategy}, seed {matrix.seed}, "
             f"order {matrix.order}), {matrix.metric}")
    try:
        chance = chance_level(matrix.metric, matrix.fpr_limit)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = {k: float(v) for k, v in summarize(
                matrix.R, baseline=baseline, reference=reference,
                chance=chance).items()}
    except MetricInputError as exc:
        raise DataError(f"{where}: {exc}") from None
    for warning in caught:
        warnings.warn(f"{where}: {warning.message}", warning.category, stacklevel=2)
    summary["pooled"] = float(matrix.pooled[-1])
    return summary


def cumulative_references(matrices: Iterable[RunMatrix],
                          ) -> dict[tuple[str, str, int, str], dict[str, float]]:
    """R*_k of intransigence (Chaudhry et al., ECCV 2018): per (method, metric, seed, order),
    the diagonal of the ``cumulative`` run, by task name: R*_k = its R[k, k], the score on task
    k of the model trained on tasks 0..k together."""
    references: dict[tuple[str, str, int, str], dict[str, float]] = {}
    for m in matrices:
        if stream_of(m.strategy) != "cumulative" or is_task_aware(m.strategy, m.task_aware):
            continue
        references[(m.method, m.metric, m.seed, m.order)] = {
            task: float(m.R[k, k]) for k, task in enumerate(m.tasks)}
    return references


#: why a report has no intransigence column, or lacks it for some runs (the report's notes)
INTRANSIGENCE_NOTE = (
    "intransigence I_k = R*_k - R[k, k] needs R*_k, the score of a model trained on tasks 0..k "
    "together (Chaudhry et al., ECCV 2018): the diagonal of a `cumulative` run of the same "
    "detector, seed and task order in the same report. {what}; run the experiment once more "
    "with strategy.name: cumulative and the same seeds and orders to report it")


def per_run_summary(matrices: Iterable[RunMatrix]) -> pd.DataFrame:
    """Tidy per-run continual metrics: one row per run, metric and quantity.

    Intransigence I_k = R*_k - R[k, k] (Chaudhry et al., ECCV 2018) is added for every continual
    run (not a reference stream, not the task-aware oracle) that has a ``cumulative`` run of the
    same detector, seed and order: R*_k = that run's R[k, k] (:func:`cumulative_references`).
    No other reference is substituted: runs without one get no intransigence, with a warning
    (:data:`INTRANSIGENCE_NOTE`) naming them.
    """
    matrices = list(matrices)
    references = cumulative_references(matrices)
    rows = []
    missing: list[str] = []
    for matrix in matrices:
        reference = None
        if not is_reference(matrix.strategy, matrix.task_aware):
            found = references.get((matrix.method, matrix.metric, matrix.seed, matrix.order))
            if found is None:
                missing.append(f"{matrix.method}/{matrix.strategy} seed {matrix.seed} order "
                               f"{matrix.order}")
            else:
                reference = np.array([found.get(task, np.nan) for task in matrix.tasks])
        for quantity, value in summarize_run(matrix, reference).items():
            rows.append({**matrix.key(), "sequence": matrix.sequence, "metric": matrix.metric,
                         "quantity": quantity, "value": value, "complete": matrix.complete,
                         "status": matrix.status, "run_dir": matrix.run_dir,
                         "fpr_limit": matrix.fpr_limit})
    missing = list(dict.fromkeys(missing))
    if missing:
        what = ("No run has one, so the column is absent" if not references else
                "These runs have none and no intransigence: " + ", ".join(missing))
        warnings.warn(INTRANSIGENCE_NOTE.format(what=what), stacklevel=2)
    return pd.DataFrame(rows)


def side_quantities(df: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """Per-run rows of :data:`SIDE_QUANTITIES` for every metric of ``per_run``: the pooled
    side metric (:data:`cl_bench.records.SIDE_METRICS`) after each run's final step; memory per
    task = memory held / number of tasks, next to the total held (``memory_mb_total``). Empty
    where no run recorded side metrics."""
    side = df[df["metric"].isin(SIDE_METRICS) & (df["eval_task"] == POOLED)]
    if side.empty or per_run.empty:
        return per_run.iloc[0:0]
    keys = list(RUN_KEY)
    final = side[side["step"] == side.groupby(keys)["step"].transform("max")]
    rows = []
    template = per_run[per_run["quantity"] == "acc"]
    for _, run in template.iterrows():
        mine = final
        for key in keys:
            mine = mine[mine[key] == run[key]]
        values = dict(zip(mine["metric"], mine["value"].astype(float), strict=True))
        n_tasks = int(mine["step"].max()) + 1 if len(mine) else 0
        for quantity in SIDE_QUANTITIES:
            metric = "memory_mb" if quantity.startswith("memory_mb_") else quantity
            if metric not in values:
                continue
            value = values[metric] / n_tasks if quantity == "memory_mb_per_task" else values[metric]
            rows.append({**run.to_dict(), "quantity": quantity, "value": value})
    return pd.DataFrame(rows, columns=per_run.columns)


def calibration_gaps(df: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """Per-run rows of :data:`CALIBRATION_QUANTITIES`: ``gap = acc - pooled`` for every run and
    metric with both; for ``image_auroc``, where the run recorded :data:`UNCALIBRATED_METRIC`,
    ``pooled_uncalibrated`` (its pooled value after the final step) and ``gap_uncalibrated``
    (the mean of its per-task values after the final step minus ``pooled_uncalibrated``).
    Only in reports that hold a calibrated run (some run recorded the uncalibrated metric): then
    every run of the report has its gap, for comparison; other reports are unchanged."""
    if per_run.empty or not (df["metric"] == UNCALIBRATED_METRIC).any():
        return per_run.iloc[0:0]
    wide = per_run[per_run["quantity"].isin(("acc", "pooled"))].pivot_table(
        index=[*RUN_KEY, "metric"], columns="quantity", values="value", dropna=False)
    raw = df[df["metric"] == UNCALIBRATED_METRIC]
    raw = raw[raw["step"] == raw.groupby(list(RUN_KEY))["step"].transform("max")]
    raw_by_run = {key: rows for key, rows in raw.groupby(list(RUN_KEY))}
    rows = []
    for _, run in per_run[per_run["quantity"] == "acc"].iterrows():
        key = tuple(run[k] for k in RUN_KEY)
        acc, pooled = (wide.loc[(*key, run["metric"])].get(q, np.nan) for q in ("acc", "pooled"))
        values = {"gap": acc - pooled}
        mine = raw_by_run.get(key)
        if run["metric"] == "image_auroc" and mine is not None:
            per_task = mine.loc[mine["eval_index"].astype(int) >= 0, "value"].astype(float)
            pooled_raw = mine.loc[mine["eval_task"] == POOLED, "value"].astype(float)
            if len(pooled_raw) and len(per_task):
                values["pooled_uncalibrated"] = float(pooled_raw.iloc[0])
                values["gap_uncalibrated"] = float(per_task.mean()) - float(pooled_raw.iloc[0])
        rows += [{**run.to_dict(), "quantity": q, "value": v} for q, v in values.items()
                 if np.isfinite(v)]
    return pd.DataFrame(rows, columns=per_run.columns)


def task_id_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Task-identification accuracy after each step (pooled over the seen tasks' test images),
    mean, std and count over seeds and orders, per (method, strategy) and kind (all, good,
    defective). Empty where no run recorded it."""
    kinds = [m for m in SIDE_METRICS if m.startswith("task_id_acc")]
    rows = df[df["metric"].isin(kinds) & (df["eval_task"] == POOLED) & (df["step"] >= 0)]
    if rows.empty:
        return pd.DataFrame(columns=[*CONFIG_KEY, "metric", "step", "mean", "std", "count"])
    rows = rows.assign(value=rows["value"].astype(float))
    return aggregate(rows, by=(*CONFIG_KEY, "metric", "step"))


def routing_diagnostics(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, strategy) and task: the :data:`ROUTING_DIAGNOSTICS` of each run's final
    step (per-task rows, plus the pooled task-ID accuracy as task ``pooled``), mean, std and
    count over seeds and orders. NaN values (no misrouted image, one class only) are left out
    of the mean. Empty where no run recorded them."""
    rows = df[df["metric"].isin(ROUTING_DIAGNOSTICS) & (df["step"] >= 0)]
    if rows.empty:
        return pd.DataFrame(columns=[*CONFIG_KEY, "task", "metric", "mean", "std", "count"])
    keys = list(RUN_KEY)
    final = rows[rows["step"] == rows.groupby(keys)["step"].transform("max")]
    final = final.assign(value=final["value"].astype(float), task=final["eval_task"])
    return aggregate(final, by=(*CONFIG_KEY, "task", "metric"))


def aggregate(per_run: pd.DataFrame, by: Sequence[str] = (*CONFIG_KEY, "metric", "quantity"),
              value: str = "value") -> pd.DataFrame:
    """Mean, sample standard deviation (ddof 1) and count of ``value`` over seeds and orders.

    NaN values (a running run's missing final row) are left out of all three; ``count`` says how
    many runs entered the mean.
    """
    grouped = per_run.groupby(list(by), sort=False)[value]
    out = grouped.agg(mean=lambda s: s.dropna().mean() if s.notna().any() else np.nan,
                      std=lambda s: s.dropna().std(ddof=1) if s.notna().sum() > 1 else np.nan,
                      count=lambda s: int(s.notna().sum()))
    out = out.reset_index()
    out["count"] = out["count"].astype(int)
    return out


#: the note of a Wilcoxon test left out because n cannot reach the level
WILCOXON_TOO_FEW = "n too small"


def wilcoxon_min_pairs(alpha: float = ALPHA) -> int:
    """The smallest n at which a two-sided exact Wilcoxon signed-rank test can give p < alpha.

    Its smallest p (all n differences of one sign) is 2 / 2^n: 0.25 at n = 3, 0.0625 at n = 5,
    0.03125 at n = 6, so n >= 6 for alpha = 0.05.
    """
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def holm_adjust(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm, Scand. J. Statist. 1979); NaN stays NaN and is
    not counted in the family.

    With the m defined p-values sorted, p_(1) <= ... <= p_(m):
    p~_(k) = min(1, max_{i<=k} (m - i + 1) p_(i)). Reject where p~ < alpha: this controls the
    family-wise error rate at alpha. Hand-written (six lines) rather than adding statsmodels
    (``multipletests(method="holm")`` computes the same) as a dependency.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    defined = np.flatnonzero(np.isfinite(p))
    m = defined.size
    if m:
        order = defined[np.argsort(p[defined], kind="stable")]
        scaled = (m - np.arange(m)) * p[order]
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _check_unique_pairs(per_run: pd.DataFrame) -> None:
    """Two runs with the same (method, strategy, order, seed) cannot both enter a pair: per
    metric and quantity, the run key less the run id (:data:`cl_bench.records.RUN_KEY`) must
    be unique."""
    key = ["metric", "quantity", *(k for k in RUN_KEY if k != "run_id")]
    clash = per_run[per_run.duplicated(key, keep=False)]
    if clash.empty:
        return
    first = clash.iloc[0]
    same = clash
    for column in key:
        same = same[same[column] == first[column]]
    where = "run_dir" if "run_dir" in same and same["run_dir"].astype(bool).all() else "run_id"
    raise DataError(f"{first['method']}/{first['strategy']} seed {first['seed']} order "
                    f"{first['order']} appears in several runs: "
                    f"{', '.join(map(str, same[where]))}; a pair needs one run per seed and "
                    "order: move or delete the duplicate run folder")


def _paired_pvalues(ref: np.ndarray, base: np.ndarray, min_wilcoxon: int) -> dict[str, Any]:
    """Two-sided p-values; NaN where a test is undefined or cannot reach the threshold.

    The t statistic divides by the standard deviation of the differences: with identical
    differences (up to 1e-12) it is undefined. The signed-rank test drops zero differences
    (scipy's default ``zero_method="wilcox"``) and is run only with ``min_wilcoxon`` non-zero
    differences or more.
    """
    diff = ref - base
    nonzero = int(np.sum(np.abs(diff) > 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_p = (float(stats.ttest_rel(ref, base).pvalue) if np.ptp(diff) > 1e-12
               else float("nan"))
        if nonzero >= min_wilcoxon:
            w_p, note = float(stats.wilcoxon(ref, base).pvalue), ""
        else:
            w_p, note = float("nan"), WILCOXON_TOO_FEW
    return {"t_pvalue": t_p, "wilcoxon_pvalue": w_p, "wilcoxon_note": note}
