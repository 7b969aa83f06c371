"""Task-level rows for runs whose tasks hold several categories (``data.tasks``).

records.csv keeps one column of R per category (eval_index = the category's column), so that
per-category forgetting stays visible. cl-bench's own continual metrics (ACC, FM, BWT, ...) need
a square matrix, one column per training task: :func:`fold_categories` averages each step's
values over the categories of each task, ``R_task[i, k] = mean_{c in task k} R[i, c]``, and names
the column after the task (``a+b``). Pooled rows (eval_index -1) are already over everything
seen and stay as they are. The per-category rows go to the literature section
(:mod:`cl_bench.report.literature`) unchanged.
"""

from __future__ import annotations

import pandas as pd

from cl_bench.errors import DataError
from cl_bench.report.load import RunInfo


def run_tasks(run: RunInfo) -> list[list[str]] | None:
    """The categories of each task of a run (manifest ``tasks``), None for one per task."""
    tasks = run.manifest.get("tasks")
    return [list(t) for t in tasks] if tasks else None


def fold_categories(df: pd.DataFrame, runs: list[RunInfo]) -> pd.DataFrame:
    """``df`` with the per-category rows of multi-category runs averaged per task."""
    tasks_of = {str(run.path): run_tasks(run) for run in runs}
    multi = {path for path, tasks in tasks_of.items() if tasks}
    inside = df["run_dir"].isin(multi) & (df["eval_index"] >= 0)
    if not inside.any():
        return df
    parts = [df[~inside]]
    for path in sorted(multi):
        rows = df[inside & (df["run_dir"] == path)]
        if rows.empty:
            continue
        tasks = tasks_of[path]
        task_of = {c: k for k, task in enumerate(tasks) for c in task}
        unknown = sorted(set(rows["eval_task"]) - set(task_of))
        if unknown:
            raise DataError(f"{path}: records name categories {unknown} that no task of its "
                            "manifest.json holds; the run folder is inconsistent")
        names = dict(enumerate("+".join(task) for task in tasks))
        index = rows["eval_task"].map(task_of).astype(int)
        rows = rows.assign(eval_index=index, eval_task=index.map(names))
        group = [c for c in rows.columns if c != "value"]
        parts.append(rows.groupby(group, dropna=False, sort=False)["value"].mean().reset_index())
    return pd.concat(parts, ignore_index=True)[list(df.columns)]
