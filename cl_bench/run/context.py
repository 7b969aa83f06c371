"""What every step of a run shares: the run's context and the records of a step.

Below :mod:`cl_bench.run.experiment`, :mod:`cl_bench.run.sequential` and
:mod:`cl_bench.run.per_task`, so that all three import it and none imports another back.
Per-step seeding lives in :mod:`cl_bench.seeding`, below the run package, because
``cl-bench train-one`` seeds the same way without a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cl_bench.config import ExperimentConfig
from cl_bench.manifest import Manifest
from cl_bench.records import POOLED, SIDE_METRICS, Record, RecordWriter
from cl_bench.run.layout import RunLayout

Log = Callable[[str], None]


@dataclass
class RunContext:
    cfg: ExperimentConfig
    run_dir: Path
    run_id: str
    device: torch.device
    manifest: Manifest
    records: RecordWriter
    log: Log
    order_name: str
    categories: list[str] = field(default_factory=list)
    #: the category columns of each task (``data.tasks``); empty: one category per task
    task_columns: list[list[int]] = field(default_factory=list)
    _store: object = None

    @property
    def groups(self) -> list[list[int]]:
        """The columns of each training task (``[[0], [1], ...]`` for one category per task)."""
        return self.task_columns or [[j] for j in range(len(self.categories))]

    @property
    def task_names(self) -> list[str]:
        """Each training task's name: its category, or its categories joined by ``+``."""
        return ["+".join(self.categories[j] for j in cols) for cols in self.groups]

    def last_column(self, step: int) -> int:
        """The last category column seen after training task ``step`` (-1 before any)."""
        return self.groups[step][-1] if step >= 0 else -1

    def feature_store(self):
        """One teacher-feature store per run, shared by its cells (one teacher per run)."""
        if self._store is None:
            from strategies.teachers.teacher_cache import FeatureStore

            perf = self.cfg.performance
            dtype = torch.float16 if perf.teacher_cache_dtype == "float16" else torch.float32
            self._store = FeatureStore(max_mb=perf.teacher_cache_mb, dtype=dtype,
                                       device=self.device)
        return self._store

    def cell_key(self, method: str, seed: int) -> str:
        return f"{method}/seed{seed}"

    @property
    def layout(self) -> RunLayout:
        """The paths of the run folder."""
        return RunLayout(self.run_dir)

    def checkpoint_path(self, method: str, seed: int, step: int) -> Path:
        return self.layout.checkpoint(method, seed, step)


def make_records(ctx: RunContext, method: str, seed: int, step: int, train_task: str,
                 per_task: dict[int, dict[str, float]], pooled: dict[str, float]) -> list[Record]:
    spec = ctx.cfg.strategy.spec()
    common = dict(run_id=ctx.run_id, method=method, strategy=spec.name,
                  task_aware=spec.task_aware, seed=seed, order=ctx.order_name,
                  step=step, train_task=train_task)
    rows = []
    for j in sorted(per_task):
        # the configured anomaly metrics, then what plugins measured (records.SIDE_METRICS)
        extra = [m for m in SIDE_METRICS if m in per_task[j]]
        for metric in [*ctx.cfg.eval.metrics, *extra]:
            if metric in per_task[j]:
                rows.append(Record(**common, eval_task=ctx.categories[j], eval_index=j,
                                   metric=metric, value=per_task[j][metric]))
    for metric, value in pooled.items():
        rows.append(Record(**common, eval_task=POOLED, eval_index=-1, metric=metric, value=value))
    return rows
