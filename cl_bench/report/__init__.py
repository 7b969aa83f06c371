"""Reports of continual-learning runs: tables, figures and ``report.md`` from what runs wrote.

Public API:
- :func:`load_runs` (paths -> tidy DataFrame of every record, for notebooks),
- :func:`build_report` (paths, out_dir, metrics=None -> out_dir; ``report.md`` in it),
- :func:`write_report` (same, returning a :class:`ReportResult` with tables, figures, data),
- :func:`console_summary` (paths -> summary tables as text for a terminal).
"""

from __future__ import annotations

from cl_bench.report.build import ReportResult, build_report, console_summary, write_report
from cl_bench.report.load import find_run_dirs, load_runs

__all__ = ["ReportResult", "build_report", "console_summary", "find_run_dirs", "load_runs",
           "write_report"]
