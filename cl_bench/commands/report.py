"""``cl-bench report RUN_OR_EXPERIMENT_DIR [...] [--out DIR] [--metric NAME ...]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.errors import ConfigError
from cl_bench.run.layout import REPORT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tables, figures and report.md from one or many runs",
        description=(
            "Combine the records of run folders (results/<experiment>/<run_id>) or of every run "
            "below a folder into tables (CSV, Markdown, LaTeX), figures (PNG, PDF) and "
            "report.md. Only complete runs enter the tables and tests; runs still running, "
            "failed or interrupted are left out and listed."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_EXPERIMENT_DIR",
                        help="a run folder (holds records.csv) or a folder above run folders")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <path>/report for one path; required "
                             "with several paths)")
    parser.add_argument("--metric", dest="metrics", action="append", default=None,
                        metavar="NAME",
                        help="metric to report (repeatable; e.g. image_auroc, pixel_auroc, "
                             "au_pro); default: every metric in the records")
    parser.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                        help="processes that draw the figures (default: the CPUs available, "
                             "at most 8); the files are the same for any N")
    parser.set_defaults(func=run_report)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give e.g. 2"
                                         ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1; give 1 to draw the figures "
                                         "in this process")
    return value


def default_out_dir(paths: list[Path]) -> Path:
    if len(paths) != 1:
        raise ConfigError("several paths given: pass --out DIR to say where the combined "
                          "report goes")
    path = paths[0]
    return (path.parent if path.is_file() else path) / REPORT


def run_report(args: argparse.Namespace) -> int:
    from cl_bench.report import write_report

    out_dir = args.out if args.out is not None else default_out_dir(args.paths)
    result = write_report(args.paths, out_dir, metrics=args.metrics, jobs=args.jobs)
    data = result.data
    print(f"report: {result.markdown}")
    print(f"  {len(data.runs)} run folder(s), metrics: {', '.join(data.metrics)}; "
          f"{len(result.table_files)} table files, {len(result.figures)} figures")
    for note in data.notes:
        print(f"  note: {note}")
    for metric in data.metrics:
        table = result.tables[f"summary_{metric}"]
        print(f"\n{table.title}\n{table.to_markdown()}")
    if "comparison" in result.tables:
        print(f"{result.tables['comparison'].title}\n{result.tables['comparison'].to_markdown()}")
    return 0
