"""``cl-bench bench {detectors,metrics,...}``: speed and memory measurements."""

from __future__ import annotations

import argparse
import importlib

#: benchmark modules; each exposes ``register(subparsers)``
BENCH_MODULES = (
    "cl_bench.benchmarks.detectors",
    "cl_bench.benchmarks.metrics",
    "cl_bench.benchmarks.run",
    "cl_bench.benchmarks.anomalib_compare",
    "cl_bench.benchmarks.cli_speed",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput and memory")
    bench_sub = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    for name in BENCH_MODULES:
        importlib.import_module(name).register(bench_sub)
