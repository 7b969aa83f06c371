"""From records to result matrices, per-run continual metrics and aggregates over seeds/orders.

R[i, j] is a metric on task j after training task i (rows 0..T-1), b_j = R[-1, j] the untrained
model (docs/metrics.md). Per run, :func:`cl_bench.metrics.continual.summarize` turns R into
ACC, FM, BWT, FWT, retention and (with a cumulative run of the same detector, seed and order)
intransigence; this
module arranges the records into R, aggregates the per-run numbers over seeds and task orders
(mean, sample standard deviation, count) and runs the paired tests of the hybrid against each
baseline (docs/statistics.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cl_bench.errors import DataError
from cl_bench.metrics.continual import chance_level, summarize
from cl_bench.metrics.inputs import MetricInputError
from cl_bench.records import POOLED, SIDE_METRICS
from cl_bench.report.strategy_kinds import is_reference, is_task_aware, reference_rank, stream_of

#: metrics in the order tables and figures show them; the F1-max keys are those of
#: :data:`cl_bench.metrics.ALL_KEYS` (TaskEvaluator, the Avalanche plugin's ``f1_max`` option)
METRIC_ORDER = ("image_auroc", "pixel_auroc", "au_pro", "image_ap", "pixel_ap", "image_f1_max",
                "pixel_f1_max")
METRIC_LABELS = {
    "image_auroc": "Image AUROC", "pixel_auroc": "Pixel AUROC", "au_pro": "AU-PRO",
    "image_ap": "Image AP", "pixel_ap": "Pixel AP", "image_f1_max": "Image F1-max",
    "pixel_f1_max": "Pixel F1-max",
}
#: the default of ``eval.pro_fpr_limit`` (cl_bench.config), assumed for runs whose config.yaml
#: lacks it (said in the report's notes)
DEFAULT_FPR_LIMIT = 0.3
#: per-run quantities: keys of ``summarize`` plus the final task-agnostic pooled metric
QUANTITIES = ("acc", "fm", "bwt", "fwt", "retention", "intransigence", "pooled")
QUANTITY_LABELS = {
    "acc": "ACC", "lower_triangle": "Lower-triangle avg", "fm": "FM", "bwt": "BWT",
    "fwt": "FWT", "retention": "Retention", "intransigence": "Intransigence",
    "pooled": "Pooled (final)", "retention_low": "Retention 95% low",
    "retention_high": "Retention 95% high", "retention_excluded": "Retention: tasks excluded",
}
#: retention's bootstrap interval over tasks and count of excluded tasks (summary table and
#: per-run CSV; no paired test)
RETENTION_DETAILS = ("retention_low", "retention_high", "retention_excluded")
#: per-run quantities read from side metrics (strategies that record them, e.g. routing):
#: the pooled value after the final step; memory divided by the number of tasks
SIDE_QUANTITIES = ("task_id_acc", "task_id_acc_good", "task_id_acc_defective",
                   "memory_mb_per_task", "memory_mb_total")
QUANTITY_LABELS.update({"task_id_acc": "Task-ID acc (final)", "task_id_acc_good": "Task-ID good",
                        "task_id_acc_defective": "Task-ID defective",
                        "memory_mb_per_task": "Memory/task (MB)",
                        "memory_mb_total": "Memory total (MB)"})
#: True where a smaller value is better
LOWER_IS_BETTER = {"fm": True, "intransigence": True, "memory_mb_per_task": True,
                   "retention_excluded": True, "memory_mb_total": True}
#: significance level of the paired tests (bold where the Holm-adjusted p is below it)
ALPHA = 0.05
KNOWN_METHODS = ("stpm", "rd4ad", "hybrid")
HYBRID = "hybrid"
CONFIG_KEY = ("method", "strategy", "task_aware")
RUN_KEY = ("run_id", "method", "strategy", "task_aware", "seed", "order")


def metric_label(metric: str, fpr_limit: float | None = None) -> str:
    """How a metric is named in tables and figures; AU-PRO carries its FPR limit,
    e.g. "AU-PRO (0.05)"."""
    label = METRIC_LABELS.get(metric, metric)
    if metric == "au_pro" and fpr_limit is not None and np.isfinite(fpr_limit):
        label += f" ({fpr_limit:g})"
    return label


def config_label(method: str, strategy: str, task_aware: bool = False) -> str:
    """How a (method, strategy) is named in every table and figure."""
    label = f"{method} / {strategy}"
    if is_task_aware(strategy, task_aware):
        label += " (task-aware oracle)"
    return label


def method_sort_key(method: str) -> tuple[int, str]:
    rank = KNOWN_METHODS.index(method) if method in KNOWN_METHODS else len(KNOWN_METHODS)
    return rank, method


def strategy_sort_key(strategy: str) -> tuple[int, str]:
    return reference_rank(strategy), strategy


def config_sort_key(config: tuple) -> tuple:
    method, strategy = config[0], config[1]
    return strategy_sort_key(strategy), method_sort_key(method)


def metrics_present(df: pd.DataFrame, wanted: Sequence[str] | None = None) -> list[str]:
    """The metrics to report: ``wanted`` (checked against the records) or all present."""
    present = set(df["metric"]) - set(SIDE_METRICS)  # no R matrix: summary columns, a plot
    if wanted:
        unknown = [m for m in wanted if m not in present]
        if unknown:
            raise DataError(f"metric(s) {', '.join(unknown)} not in the records; they hold "
                            f"{', '.join(sorted(present))}")
        return list(dict.fromkeys(wanted))
    ordered = [m for m in METRIC_ORDER if m in present]
    return ordered + sorted(present - set(ordered))


@dataclass
class RunMatrix:
    """The result matrix of one run (method, strategy, seed, order) for one metric."""

    run_id: str
    method: str
    strategy: str
    task_aware: bool
    seed: int
    order: str
    metric: str
    tasks: tuple[str, ...]
    R: np.ndarray  # (T, T), NaN where not evaluated
    baseline: np.ndarray  # (T,), row -1
    pooled: np.ndarray  # (T,), task-agnostic metric after each step
    evaluated: np.ndarray  # (T, T) bool, True where a record exists
    status: str
    fpr_limit: float = DEFAULT_FPR_LIMIT  # eval.pro_fpr_limit of the run (AU-PRO)
    run_dir: str = ""

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def sequence(self) -> str:
        return " > ".join(self.tasks)

    @property
    def expected_rows(self) -> list[int]:
        """Rows the protocol fills: a joint stream trains once on all tasks (row T-1 only)."""
        if stream_of(self.strategy) == "joint":
            return [self.n_tasks - 1]
        return list(range(self.n_tasks))

    @property
    def complete(self) -> bool:
        """Every cell the protocol fills has a record (its value may be NaN). A per-task stream
        (one detector per task) fills row i up to column i only: task j > i has no detector."""
        rows = self.evaluated[self.expected_rows]
        if stream_of(self.strategy) == "per_task":
            rows = np.where(np.tri(self.n_tasks, dtype=bool), rows, True)
        return bool(rows.all())

    @property
    def steps_done(self) -> int:
        """How many of the expected rows hold at least one record."""
        return int(sum(self.evaluated[row].any() for row in self.expected_rows))

    def key(self) -> dict:
        return {"run_id": self.run_id, "method": self.method, "strategy": self.strategy,
                "task_aware": self.task_aware, "seed": self.seed, "order": self.order}


def task_sequence(rows: pd.DataFrame, where: str) -> tuple[str, ...]:
    """Task names by position (eval_index 0..T-1) from the per-task rows of one run."""
    names: dict[int, set[str]] = {}
    for index, task in set(zip(rows["eval_index"].tolist(), rows["eval_task"].tolist(),
                               strict=True)):
        if index >= 0:
            names.setdefault(int(index), set()).add(str(task))
    clash = {index: sorted(tasks) for index, tasks in names.items() if len(tasks) > 1}
    if clash:
        index = min(clash)
        raise DataError(f"{where}: eval_index {index} names several tasks {clash[index]}; each "
                        "position of the task order must name one category")
    if not names:
        raise DataError(f"{where}: no per-task rows (eval_index >= 0)")
    n_tasks = max(names) + 1
    missing = [i for i in range(n_tasks) if i not in names]
    if missing:
        raise DataError(f"{where}: no rows for task position(s) {missing}; expected 0..{n_tasks-1}")
    return tuple(next(iter(names[i])) for i in range(n_tasks))


def build_matrices(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[RunMatrix]:
    """One :class:`RunMatrix` per run and metric, from tidy records (see :func:`load_runs`)."""
    metrics = metrics_present(df, metrics)
    df = df.copy(deep=False)
    df.attrs = {}  # load_runs' run facts would be deep-copied into every group
    result: list[RunMatrix] = []
    for key, rows in df.groupby(list(RUN_KEY), sort=True):
        run_id, method, strategy, task_aware, seed, order = key
        where = (f"{rows['run_dir'].iloc[0] if 'run_dir' in rows else run_id}: "
                 f"{method}/{strategy} seed {seed} order {order}")
        tasks = task_sequence(rows, where)
        n_tasks = len(tasks)
        steps = rows["step"].to_numpy()
        bad_steps = sorted(set(steps.tolist()) - set(range(-1, n_tasks)))
        if bad_steps:
            raise DataError(f"{where}: step(s) {bad_steps} outside -1..{n_tasks - 1}")
        status = str(rows["status"].iloc[0]) if "status" in rows else "unknown"
        fpr_limit = (float(rows["pro_fpr_limit"].iloc[0]) if "pro_fpr_limit" in rows
                     else DEFAULT_FPR_LIMIT)
        if not np.isfinite(fpr_limit):
            fpr_limit = DEFAULT_FPR_LIMIT  # compute() notes the runs that lack the key
        run_dir = str(rows["run_dir"].iloc[0]) if "run_dir" in rows else ""
        index = rows["eval_index"].to_numpy()
        values = rows["value"].to_numpy(dtype=float)
        metric_of_row = rows["metric"].to_numpy()
        is_pooled = rows["eval_task"].to_numpy() == POOLED
        for metric in metrics:
            mine = metric_of_row == metric
            trained = mine & (index >= 0) & (steps >= 0)
            untrained = mine & (index >= 0) & (steps == -1)
            pooled_rows = mine & is_pooled & (steps >= 0)
            R = np.full((n_tasks, n_tasks), np.nan)
            R[steps[trained], index[trained]] = values[trained]
            evaluated = np.zeros((n_tasks, n_tasks), dtype=bool)
            evaluated[steps[trained], index[trained]] = True
            baseline = np.full(n_tasks, np.nan)
            baseline[index[untrained]] = values[untrained]
            pooled = np.full(n_tasks, np.nan)
            pooled[steps[pooled_rows]] = values[pooled_rows]
            result.append(RunMatrix(run_id=str(run_id), method=str(method),
                                    strategy=str(strategy), task_aware=bool(task_aware),
                                    seed=int(seed), order=str(order), metric=metric,
                                    tasks=tasks, R=R, baseline=baseline, pooled=pooled,
                                    evaluated=evaluated, status=status,
                                    fpr_limit=fpr_limit, run_dir=run_dir))
    return result


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


#: per-task routing side metrics shown in the routing diagnostics table, with their labels
ROUTING_DIAGNOSTICS = {"task_id_acc": "Task-ID acc",
                       "image_auroc_routed_right": "Image AUROC routed right",
                       "image_auroc_misrouted": "Image AUROC misrouted",
                       "pixel_auroc_routed_right": "Pixel AUROC routed right",
                       "pixel_auroc_misrouted": "Pixel AUROC misrouted",
                       "routing_margin_low_frac": "Low-margin share"}


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


def final_per_task(matrices: Iterable[RunMatrix]) -> pd.DataFrame:
    """Per-run final values R[T-1, j] by task name (tidy)."""
    rows = []
    for m in matrices:
        for j, task in enumerate(m.tasks):
            rows.append({**m.key(), "metric": m.metric, "task": task, "position": j,
                         "value": float(m.R[-1, j])})
    return pd.DataFrame(rows)


def step_curves(matrices: Iterable[RunMatrix]) -> pd.DataFrame:
    """Per run and step i: the average over seen tasks ACC_i = mean_{j<=i} R[i, j], and pooled.

    As in :mod:`cl_bench.metrics.continual`, NaN cells are left out of the mean; a row with no
    value gives NaN.
    """
    rows = []
    for m in matrices:
        for i in range(m.n_tasks):
            seen = m.R[i, : i + 1]
            seen = seen[np.isfinite(seen)]
            rows.append({**m.key(), "metric": m.metric, "step": i,
                         "seen_average": float(seen.mean()) if seen.size else np.nan,
                         "pooled": float(m.pooled[i])})
    return pd.DataFrame(rows)


@dataclass
class MatrixAggregate:
    """R averaged over the runs of one (method, strategy) that share one task sequence."""

    method: str
    strategy: str
    task_aware: bool
    metric: str
    tasks: tuple[str, ...]
    mean: np.ndarray  # (T, T)
    std: np.ndarray  # (T, T), NaN with one run
    count: np.ndarray  # (T, T) int, runs with a value in each cell
    baseline_mean: np.ndarray  # (T,)
    baseline_std: np.ndarray  # (T,)
    fpr_limit: float = DEFAULT_FPR_LIMIT

    @property
    def label(self) -> str:
        return config_label(self.method, self.strategy, self.task_aware)

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric, self.fpr_limit)


def aggregate_matrices(matrices: Iterable[RunMatrix]) -> list[MatrixAggregate]:
    """Cell-wise mean/std/count of R over the seeds of each (method, strategy, task sequence)."""
    groups: dict[tuple, list[RunMatrix]] = {}
    for m in matrices:
        groups.setdefault((m.method, m.strategy, m.task_aware, m.metric, m.tasks), []).append(m)
    out = []
    for (method, strategy, task_aware, metric, tasks), members in groups.items():
        stack = np.stack([m.R for m in members])
        base = np.stack([m.baseline for m in members])
        count = np.isfinite(stack).sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0)
            std = np.where(count > 1, np.nanstd(stack, axis=0, ddof=1), np.nan)
            base_mean = np.nanmean(base, axis=0)
            base_std = np.where(np.isfinite(base).sum(axis=0) > 1,
                                np.nanstd(base, axis=0, ddof=1), np.nan)
        out.append(MatrixAggregate(method, strategy, task_aware, metric, tasks, mean, std,
                                   count, base_mean, base_std, members[0].fpr_limit))
    out.sort(key=lambda a: (METRIC_ORDER.index(a.metric) if a.metric in METRIC_ORDER else 99,
                            a.tasks, config_sort_key((a.method, a.strategy))))
    return out


#: the columns of :func:`cl_bench.report.compare.paired_comparison`
PAIRED_COLUMNS = ["metric", "strategy", "task_aware", "baseline", "quantity", "n",
                  "reference_mean", "baseline_mean", "mean_diff", "t_pvalue", "t_pvalue_holm",
                  "wilcoxon_pvalue", "wilcoxon_pvalue_holm", "wilcoxon_note"]
#: what identifies one pair: the same strategy (and task awareness), task order and seed
PAIR_KEY = ["strategy", "task_aware", "order", "seed"]
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
    """Two runs with the same (method, strategy, order, seed) cannot both enter a pair."""
    key = ["metric", "quantity", "method", *PAIR_KEY]
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


def _rank(name: str, order: Sequence[str]) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order)), name


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
