"""The ``cl-bench`` command line.

Each sub-command lives in its own module that exposes ``register(subparsers)``; the chosen
command's ``func(args) -> int`` is called with the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cl_bench import __version__
from cl_bench.errors import CLBenchError
from strategies.errors import StrategiesError

#: modules that contribute sub-commands, in the order ``--help`` lists them
COMMAND_MODULES = (
    "cl_bench.commands.run",
    "cl_bench.commands.report",
    "cl_bench.commands.sweep",
    "cl_bench.commands.data",
    "cl_bench.commands.train_one",
    "cl_bench.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cl-bench",
        description="Continual-learning benchmark for knowledge-distillation anomaly detectors.",
    )
    parser.add_argument("--version", action="version", version=f"cl-bench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLBenchError, StrategiesError) as exc:
        print(f"cl-bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
