"""``cl-bench run CONFIG [--set key=value ...] [--out DIR] [--resume RUN_DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.errors import ConfigError
from cl_bench.progress_settings import DEFAULT_INTERVAL_S, MODES
from cl_bench.run.layout import RunLayout


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a task sequence experiment",
        description="Train each method on the tasks in order, evaluate after every task, and "
        "write config.yaml, manifest.json, records.csv, checkpoints, maps and a report into "
        "OUT/<experiment>/<run_id>/. Exit status 0 done, 2 bad input or a failed run, 130 "
        "Ctrl-C / 143 SIGTERM (the run is marked interrupted and can be resumed). "
        "See docs/running.md.",
    )
    parser.add_argument("config", nargs="?", help="experiment YAML (see experiments/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=2")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue an interrupted or failed run after its last completed "
                        "task (the folder is locked while a process writes it)")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="with --resume: continue although config.yaml was changed since "
                        "the run began (refused otherwise, naming the changed keys); the "
                        "change is recorded in manifest.json (config_changes)")
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.add_argument("--progress", choices=MODES, default="auto",
                        help="bar: tqdm bars; lines: a plain line per epoch or every "
                        "--progress-interval seconds (whichever is rarer) and one when each "
                        "evaluation starts, for logs and cluster jobs; off: only a line per "
                        "completed task; auto (default): bar on a terminal, else lines")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const="off",
                        help="same as --progress off")
    parser.add_argument("--progress-interval", type=float, default=DEFAULT_INTERVAL_S,
                        metavar="SECONDS",
                        help=f"lines mode: at most one training line per SECONDS (default "
                        f"{DEFAULT_INTERVAL_S:g}; 0: one per epoch)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cl_bench.config import load_config
    from cl_bench.progress_settings import resolve_progress
    from cl_bench.run.experiment import run_experiment

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes the run folder alone: its config.yaml is reused")
        cfg = None
    elif args.allow_config_change:
        raise ConfigError("--allow-config-change applies to --resume RUN_DIR only")
    elif not args.config:
        raise ConfigError("give a CONFIG file (e.g. experiments/quickstart.yaml) or "
                          "--resume RUN_DIR")
    else:
        cfg = load_config(args.config, args.overrides)
    if args.progress_interval < 0:
        raise ConfigError(f"--progress-interval {args.progress_interval:g}: give 0 or more "
                          "seconds")
    progress = resolve_progress(args.progress, interval_s=args.progress_interval)
    run_dir = run_experiment(cfg, out_root=Path(args.out), resume=args.resume,
                             progress=progress, allow_config_change=args.allow_config_change)
    from cl_bench.report import build_report, console_summary

    print()
    print(console_summary([run_dir]))
    if not args.no_report:
        report_dir = build_report([run_dir], RunLayout(run_dir).report_dir)
        print(f"\nreport: {report_dir / 'report.md'}")
    print(f"run folder: {run_dir}")
    return 0
