"""What the report shows, computed once: the input of :mod:`cl_bench.report.markdown`.

Its own module so that :mod:`cl_bench.report.build` (which computes it) and
:mod:`cl_bench.report.markdown` (which renders it) both import it from below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cl_bench.report.labels import RecordedDetectors, metric_label
from cl_bench.report.load import RunInfo
from cl_bench.report.matrices import DEFAULT_FPR_LIMIT, RunMatrix


@dataclass
class SavedFigure:
    """A saved figure: its files and the caption report.md shows under it."""

    name: str
    caption: str
    paths: list[Path]


@dataclass
class ReportData:
    """Everything computed from the records; the input of :mod:`cl_bench.report.markdown`."""

    records: pd.DataFrame
    runs: list[RunInfo]
    metrics: list[str]
    matrices: list[RunMatrix]
    per_run: pd.DataFrame
    summary: pd.DataFrame
    final: pd.DataFrame
    curves: pd.DataFrame
    paired: pd.DataFrame
    sequences: list[tuple[str, ...]]
    notes: list[str] = field(default_factory=list)
    #: eval.pro_fpr_limit shared by every reported run (one value: limits are never pooled)
    fpr_limit: float = DEFAULT_FPR_LIMIT
    #: run folders left out of every table and test because they are not complete
    excluded: list[RunInfo] = field(default_factory=list)
    #: the markdown of the section "As the literature reports it" (cl_bench.report.literature)
    literature: list[str] = field(default_factory=list)
    #: the detectors' labels, order and colours as the runs recorded them (None: the registry's)
    detectors: RecordedDetectors | None = None

    def metric_label(self, metric: str) -> str:
        return metric_label(metric, self.fpr_limit)
