"""From records to result matrices, per-run continual metrics and aggregates over seeds/orders.

R[i, j] is a metric on task j after training task i (rows 0..T-1), b_j = R[-1, j] the untrained
model (DESIGN.md, "Metrics"). Per run, :func:`cl_bench.metrics.continual.summarize` turns R into
ACC, FM, BWT, FWT and retention; this module only arranges the records into R and aggregates the
per-run numbers over seeds and task orders (mean, sample standard deviation, count).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cl_bench.errors import DataError
from cl_bench.metrics.continual import chance_level, summarize
from cl_bench.metrics.inputs import MetricInputError
from cl_bench.report.load import POOLED

#: metrics in the order tables and figures show them
METRIC_ORDER = ("image_auroc", "pixel_auroc", "au_pro", "image_ap", "pixel_ap", "f1_max")
METRIC_LABELS = {
    "image_auroc": "Image AUROC", "pixel_auroc": "Pixel AUROC", "au_pro": "AU-PRO (0.3)",
    "image_ap": "Image AP", "pixel_ap": "Pixel AP", "f1_max": "F1-max",
}
#: per-run quantities: keys of ``summarize`` plus the final task-agnostic pooled metric
QUANTITIES = ("acc", "fm", "bwt", "fwt", "retention", "pooled")
QUANTITY_LABELS = {
    "acc": "ACC", "lower_triangle": "Lower-triangle avg", "fm": "FM", "bwt": "BWT",
    "fwt": "FWT", "retention": "Retention", "pooled": "Pooled (final)",
}
#: True where a smaller value is better
LOWER_IS_BETTER = {"fm": True}
#: strategies that are references, not continual learners
REFERENCE_STRATEGIES = ("joint", "independent")
KNOWN_METHODS = ("stpm", "rd4ad", "hybrid")
HYBRID = "hybrid"
CONFIG_KEY = ("method", "strategy", "task_aware")
RUN_KEY = ("run_id", "method", "strategy", "task_aware", "seed", "order")


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def config_label(method: str, strategy: str, task_aware: bool = False) -> str:
    """How a (method, strategy) is named in every table and figure."""
    label = f"{method} / {strategy}"
    if task_aware or strategy == "independent":
        label += " (task-aware oracle)"
    return label


def method_sort_key(method: str) -> tuple[int, str]:
    rank = KNOWN_METHODS.index(method) if method in KNOWN_METHODS else len(KNOWN_METHODS)
    return rank, method


def strategy_sort_key(strategy: str) -> tuple[int, str]:
    if strategy in REFERENCE_STRATEGIES:
        return 1 + REFERENCE_STRATEGIES.index(strategy), strategy
    return 0, strategy


def config_sort_key(config: tuple) -> tuple:
    method, strategy = config[0], config[1]
    return strategy_sort_key(strategy), method_sort_key(method)


def metrics_present(df: pd.DataFrame, wanted: Sequence[str] | None = None) -> list[str]:
    """The metrics to report: ``wanted`` (checked against the records) or all present."""
    present = set(df["metric"])
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

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def sequence(self) -> str:
        return " > ".join(self.tasks)

    @property
    def expected_rows(self) -> list[int]:
        """Rows the protocol fills: joint trains once on all tasks (row T-1 only)."""
        return [self.n_tasks - 1] if self.strategy == "joint" else list(range(self.n_tasks))

    @property
    def complete(self) -> bool:
        """Every cell of the rows the protocol fills has a record (its value may be NaN)."""
        return bool(self.evaluated[self.expected_rows].all())

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
                                    evaluated=evaluated, status=status))
    return result


def summarize_run(matrix: RunMatrix, fpr_limit: float = 0.3) -> dict[str, float]:
    """Continual metrics of one run: ``summarize(R, baseline)`` plus the final pooled value.

    ``summarize`` leaves NaN cells out of its means, so a run still running contributes what its
    evaluated rows define (FWT after two steps, say) and NaN for what needs the final row.
    """
    baseline = matrix.baseline if np.isfinite(matrix.baseline).any() else None
    try:
        chance = chance_level(matrix.metric, fpr_limit)
        summary = {k: float(v) for k, v in summarize(matrix.R, baseline=baseline,
                                                      chance=chance).items()}
    except MetricInputError as exc:
        raise DataError(f"run {matrix.run_id} ({matrix.method}/{matrix.strategy}, seed "
                        f"{matrix.seed}), {matrix.metric}: {exc}") from None
    summary["pooled"] = float(matrix.pooled[-1])
    return summary


def per_run_summary(matrices: Iterable[RunMatrix]) -> pd.DataFrame:
    """Tidy per-run continual metrics: one row per run, metric and quantity."""
    rows = []
    for matrix in matrices:
        for quantity, value in summarize_run(matrix).items():
            rows.append({**matrix.key(), "sequence": matrix.sequence, "metric": matrix.metric,
                         "quantity": quantity, "value": value, "complete": matrix.complete,
                         "status": matrix.status})
    return pd.DataFrame(rows)


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

    @property
    def label(self) -> str:
        return config_label(self.method, self.strategy, self.task_aware)


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
                                   count, base_mean, base_std))
    out.sort(key=lambda a: (METRIC_ORDER.index(a.metric) if a.metric in METRIC_ORDER else 99,
                            a.tasks, config_sort_key((a.method, a.strategy))))
    return out


def paired_comparison(per_run: pd.DataFrame, reference: str = HYBRID,
                      min_pairs: int = 3) -> pd.DataFrame:
    """The hybrid against each baseline, paired over seeds (and orders) of the same strategy.

    For each metric, quantity and baseline method: the differences d_k = hybrid_k - baseline_k
    over the n runs paired by (strategy, order, seed); the mean difference, the two-sided paired
    t-test p-value (scipy.stats.ttest_rel) and the Wilcoxon signed-rank p-value
    (scipy.stats.wilcoxon). Only pairs where both values are finite count; comparisons with
    fewer than ``min_pairs`` pairs are left out.
    """
    columns = ["metric", "strategy", "baseline", "quantity", "n", "reference_mean",
               "baseline_mean", "mean_diff", "t_pvalue", "wilcoxon_pvalue"]
    if per_run.empty or reference not in set(per_run["method"]):
        return pd.DataFrame(columns=columns)
    per_run = per_run[per_run["quantity"].isin(QUANTITIES)]
    pivot = per_run.pivot_table(index=["metric", "strategy", "quantity", "order", "seed"],
                                columns="method", values="value", aggfunc="first",
                                dropna=False)
    rows = []
    groups = sorted(pivot.groupby(level=[0, 1, 2]), key=lambda item: (
        _rank(item[0][0], METRIC_ORDER), strategy_sort_key(item[0][1]),
        _rank(item[0][2], QUANTITIES)))
    for (metric, strategy, quantity), table in groups:
        for baseline in sorted((c for c in table.columns if c != reference), key=method_sort_key):
            pairs = table[[reference, baseline]].dropna()
            if len(pairs) < min_pairs:
                continue
            ref, base = pairs[reference].to_numpy(), pairs[baseline].to_numpy()
            rows.append({"metric": metric, "strategy": strategy, "baseline": baseline,
                         "quantity": quantity, "n": len(pairs), "reference_mean": ref.mean(),
                         "baseline_mean": base.mean(), "mean_diff": float(np.mean(ref - base)),
                         **_paired_pvalues(ref, base)})
    return pd.DataFrame(rows, columns=columns)


def _rank(name: str, order: Sequence[str]) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order)), name


def _paired_pvalues(ref: np.ndarray, base: np.ndarray) -> dict[str, float]:
    """Two-sided p-values; NaN where a test is undefined.

    The t statistic divides by the standard deviation of the differences: with identical
    differences (up to 1e-12) it is undefined. The signed-rank test needs a non-zero difference.
    """
    diff = ref - base
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_p = (float(stats.ttest_rel(ref, base).pvalue) if np.ptp(diff) > 1e-12
               else float("nan"))
        w_p = (float(stats.wilcoxon(ref, base).pvalue) if np.any(np.abs(diff) > 1e-12)
               else float("nan"))
    return {"t_pvalue": t_p, "wilcoxon_pvalue": w_p}
