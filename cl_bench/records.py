"""``records.csv``: the long-format table of every value a run measured.

One row per (method, strategy, seed, order, step, eval task, metric). Rows are appended and
flushed to disk after every evaluation, so a run killed at any point keeps everything it
measured; :meth:`RecordWriter.truncate_after` drops the rows of a step that did not complete
before a resumed run measures it again.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from cl_bench.io import atomic_write


@dataclass(frozen=True)
class RunKey:
    """What identifies one continual run in the records: the run folder's id, the detector
    (``method``), the strategy, whether it uses task identity at test time, the seed and the task
    order. The first columns of every :class:`Record`; the report's result matrix of a run
    (``cl_bench.report.matrices.RunMatrix``) extends it."""

    run_id: str
    method: str
    strategy: str
    task_aware: bool
    seed: int
    order: str

    @classmethod
    def of(cls, values: Iterable[Any]) -> RunKey:
        """The key from its values in :data:`RUN_KEY` order, each cast to its declared type
        (a group key or a DataFrame row may hold numpy scalars: ``np.int64``, ``np.bool_``)."""
        return cls(*(RUN_KEY_TYPES[name](value)
                     for name, value in zip(RUN_KEY, values, strict=True)))

    def key(self) -> dict[str, Any]:
        """The key's fields by name, in :data:`RUN_KEY` order (columns of the report's tidy
        tables)."""
        return {name: getattr(self, name) for name in RUN_KEY}


@dataclass(frozen=True)
class Record(RunKey):
    """One measured value: a run (:class:`RunKey`), a step, a test set and a metric."""

    step: int  # -1: untrained model; i: after training task i
    train_task: str  # category trained at this step ("" at -1, "joint" for the joint strategy)
    eval_task: str  # category name, or "pooled" (all test images of tasks 0..step)
    eval_index: int  # column j of R; -1 for pooled
    metric: str
    value: float


COLUMNS = [f.name for f in fields(Record)]
#: the Python type of each column of ``records.csv`` (str, bool, int or float), as declared above
COLUMN_TYPES: dict[str, type] = {name: get_type_hints(Record)[name] for name in COLUMNS}
#: the columns that identify one run: the fields of :class:`RunKey`, the report's one run key
RUN_KEY = tuple(f.name for f in fields(RunKey))
RUN_KEY_TYPES = {name: COLUMN_TYPES[name] for name in RUN_KEY}
POOLED = "pooled"
#: metrics a strategy's plugin may add (``eval_metrics()``, cl_bench.evaluation), not anomaly
#: metrics (no R matrix of their own); a plugin metric is written only when listed here:
#: the routing strategy's task-identification accuracy (all, good, defective test images of the
#: seen tasks) and memory held (MB; per task: its expert and key, pooled: everything held), and
#: per seen task its misrouting diagnostics (strategies.continual.routing.diagnostics: image and
#: pixel AUROC of correctly routed and misrouted images apart, NaN where a group is empty or of one
#: class; the key-distance margin's mean, minimum and share below the low-margin threshold);
#: with score calibration (strategies.continual.calibration), the image AUROC of the raw,
#: uncalibrated scores of the same run, per task and pooled (the "before" of the calibration gap)
SIDE_METRICS = ("task_id_acc", "task_id_acc_good", "task_id_acc_defective", "memory_mb",
                "image_auroc_routed_right", "image_auroc_misrouted",
                "pixel_auroc_routed_right", "pixel_auroc_misrouted",
                "routing_margin_mean", "routing_margin_min", "routing_margin_low_frac",
                "image_auroc_uncalibrated")


class RecordWriter:
    """Append-only CSV writer with a header, flushed and fsynced after every batch of rows."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists() or self.path.stat().st_size == 0:
            atomic_write(self.path, lambda fh: fh.write((",".join(COLUMNS) + "\n").encode()))

    def append(self, records: Iterable[Record]) -> None:
        rows = [asdict(r) for r in records]
        if not rows:
            return
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
            for row in rows:
                row["value"] = repr(float(row["value"]))  # round-trips every float exactly
                writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as fh:
            return list(csv.DictReader(fh))

    def rewrite(self, keep: Callable[[dict[str, str]], bool]) -> int:
        """Atomically keep only the complete rows for which ``keep(row)`` is true."""
        text = self.path.read_text()
        lines = text.splitlines(keepends=True)
        cut = 1 if lines and not lines[-1].endswith("\n") else 0
        lines = lines[: len(lines) - cut]  # drop a row cut by a kill
        rows = list(csv.DictReader(lines))
        kept = [r for r in rows if None not in r and all(v is not None for v in r.values())
                and keep(r)]

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write(self.path, lambda fh: fh.write(buffer.getvalue().encode()))
        return len(rows) + cut - len(kept)
