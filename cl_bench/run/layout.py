"""The files of a run folder, named in one place.

A run folder ``<out>/<experiment>/<run_id>/`` holds::

    config.yaml                                  the resolved configuration
    manifest.json                                versions, device, timings, status
    records.csv                                  every value measured (long format)
    checkpoints/<method>/seed<s>/step<ii>.pt     the students after each step
    scores/<method>/seed<s>/task<ii>.npz         test scores of the per-task oracle
    maps/<method>__<strategy>__seed<s>.npz       anomaly maps saved after the last task
    logs/<method>__seed<s>.txt                   Avalanche's text log (train.log: text)
    tensorboard/<method>__seed<s>/               TensorBoard events (train.log: tensorboard)
    report/                                      tables and plots

The runner writes these paths and the report reads them through :class:`RunLayout`; a map
file's name is parsed back by :func:`parse_map_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cl_bench.errors import DataError

CONFIG = "config.yaml"
MANIFEST = "manifest.json"
RECORDS = "records.csv"
CHECKPOINTS = "checkpoints"
SCORES = "scores"
MAPS = "maps"
LOGS = "logs"
TENSORBOARD = "tensorboard"
REPORT = "report"
#: the folders a run writes besides its three files (never searched for other runs)
OUTPUT_DIRS = (CHECKPOINTS, SCORES, MAPS, LOGS, TENSORBOARD, REPORT)

_MAP_FILE = re.compile(r"^(?P<method>.+?)__(?P<strategy>.+?)__seed(?P<seed>-?\d+)\.npz$")


@dataclass(frozen=True)
class MapName:
    """What a map file's name says: the (method, strategy, seed) whose maps it holds."""

    method: str
    strategy: str
    seed: int


def map_file_name(method: str, strategy: str, seed: int) -> str:
    """``<method>__<strategy>__seed<seed>.npz``."""
    return f"{method}__{strategy}__seed{seed}.npz"


def parse_map_name(path: str | Path) -> MapName:
    """The inverse of :func:`map_file_name`; DataError for any other name."""
    name = Path(path).name
    match = _MAP_FILE.match(name)
    if not match:
        raise DataError(f"{path}: file name must be <method>__<strategy>__seed<seed>.npz")
    return MapName(match["method"], match["strategy"], int(match["seed"]))


@dataclass(frozen=True)
class RunLayout:
    """Every path inside one run folder ``root``."""

    root: Path

    @classmethod
    def of(cls, out_root: str | Path, experiment: str, run_id: str) -> RunLayout:
        """The layout of run ``run_id`` of ``experiment`` below the results folder ``out_root``."""
        return cls(Path(out_root) / experiment / run_id)

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def records(self) -> Path:
        return self.root / RECORDS

    @property
    def maps_dir(self) -> Path:
        return self.root / MAPS

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT

    def checkpoint(self, method: str, seed: int, step: int) -> Path:
        return self.root / CHECKPOINTS / method / f"seed{seed}" / f"step{step:02d}.pt"

    def scores(self, method: str, seed: int, task: int) -> Path:
        return self.root / SCORES / method / f"seed{seed}" / f"task{task:02d}.npz"

    def map_file(self, method: str, strategy: str, seed: int) -> Path:
        return self.maps_dir / map_file_name(method, strategy, seed)

    def map_files(self) -> list[Path]:
        """The saved map files, sorted by name (none when the run saved no maps)."""
        return sorted(self.maps_dir.glob("*.npz")) if self.maps_dir.is_dir() else []

    def routing_confusion(self, method: str, seed: int, step: int) -> Path:
        """The routing strategy's confusion matrix (true task x routed expert) after ``step``."""
        return self.root / "routing" / f"{method}__seed{seed}__confusion_step{step:02d}.csv"

    def routing_confusions(self) -> list[Path]:
        """The saved confusion matrices, sorted by name (none when the run routed nothing)."""
        folder = self.root / "routing"
        return sorted(folder.glob("*__confusion_step*.csv")) if folder.is_dir() else []

    def text_log(self, method: str, seed: int) -> Path:
        return self.root / LOGS / f"{method}__seed{seed}.txt"

    def tensorboard(self, method: str, seed: int) -> Path:
        return self.root / TENSORBOARD / f"{method}__seed{seed}"
