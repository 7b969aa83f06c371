"""From records to result matrices: one R per run and metric, its tidy views, its mean over seeds.

R[i, j] is a metric on task j after training task i (rows 0..T-1), b_j = R[-1, j] the untrained
model (docs/metrics.md). A :class:`RunMatrix` is one run's :class:`~cl_bench.records.RunKey`
with R, the untrained row and the pooled (task-agnostic) metric after each step;
:class:`MatrixAggregate` is R averaged cell by cell over the runs of one configuration that
share one task sequence.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cl_bench.errors import DataError
from cl_bench.records import POOLED, RUN_KEY, SIDE_METRICS, RunKey
from cl_bench.report.labels import METRIC_ORDER, config_label, config_sort_key, metric_label
from cl_bench.report.strategy_kinds import stream_of

#: the default of ``eval.pro_fpr_limit`` (cl_bench.config), assumed for runs whose config.yaml
#: lacks it (said in the report's notes)
DEFAULT_FPR_LIMIT = 0.3


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


@dataclass(frozen=True)
class RunMatrix(RunKey):
    """The result matrix of one run (its :class:`~cl_bench.records.RunKey`: run id, method,
    strategy, task awareness, seed, order) for one metric. Frozen like the key it extends: what
    the records hold, read once."""

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
        run = RunKey.of(key)
        where = (f"{rows['run_dir'].iloc[0] if 'run_dir' in rows else run.run_id}: "
                 f"{run.method}/{run.strategy} seed {run.seed} order {run.order}")
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
            result.append(RunMatrix(**run.key(), metric=metric, tasks=tasks, R=R,
                                    baseline=baseline, pooled=pooled, evaluated=evaluated,
                                    status=status, fpr_limit=fpr_limit, run_dir=run_dir))
    return result



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

