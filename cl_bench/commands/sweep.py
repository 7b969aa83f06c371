"""``cl-bench sweep CONFIG [--backend local|ray] [--jobs N] [--address ADDR] [--out DIR]``.

Also ``--dry-run`` (list the cells), ``--threads K``, ``--ray-results``, ``--gpus-per-cell``,
``--set``.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of experiments (methods x strategies x seeds x orders ...)",
        description="Expand the grid of a sweep file into cells (each one ordinary run into "
        "OUT/<experiment>/<cell run id>/), run them with the local or the Ray backend, skip "
        "cells that are complete, resume incomplete ones, record failures in sweep.json "
        "without stopping, and build the combined report in OUT/<experiment>/report/.",
    )
    parser.add_argument("config", help="sweep YAML: an experiment config plus a 'grid:' mapping "
                        "(see experiments/synthetic_sweep.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a key of the base config, e.g. data.root=/data/mvtec")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local processes (default) or Ray tasks")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="local backend: N worker processes (default 1: in this process)")
    parser.add_argument("--threads", type=int, default=None, metavar="K",
                        help="torch threads per cell (local --jobs N: default cores/N; ray: CPUs "
                        "per task, default 1)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="ray backend: 'auto' or a cluster address (default: start a local "
                        "Ray instance)")
    parser.add_argument("--ray-results", choices=("shared", "return"), default="shared",
                        help="ray backend: tasks write into --out (a path every node sees; "
                        "default) or return their files to this driver, which writes them")
    parser.add_argument("--gpus-per-cell", type=float, default=1.0, metavar="F",
                        help="ray backend: share of one GPU each cell asks for when the cluster "
                        "has GPUs (default 1: a GPU per cell; 0.5: two cells per GPU)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the cells and what would happen to each; run nothing")
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cl_bench.sweep import describe_plan, load_sweep, plan, run_sweep
    from cl_bench.sweep.driver import missing_data_roots

    sweep = load_sweep(args.config, args.overrides)
    if args.dry_run:
        print(f"sweep {sweep.experiment} from {sweep.source} into "
              f"{Path(args.out) / sweep.experiment}")
        print(describe_plan(plan(sweep, Path(args.out))))
        for root in missing_data_roots(sweep.cells):
            print(f"warning: data.root {root} does not exist on this machine")
        return 0
    outcome = run_sweep(sweep, out_root=args.out, backend=args.backend, jobs=args.jobs,
                        threads=args.threads, address=args.address,
                        ray_results=args.ray_results, report=not args.no_report,
                        gpus_per_cell=args.gpus_per_cell)
    return 1 if outcome.failed else 0
