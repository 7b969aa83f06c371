"""The ``cl-bench`` command line.

Each sub-command lives in its own module that exposes ``register(subparsers)``; the chosen
command's ``func(args) -> int`` is called with the parsed arguments.

Exit statuses: 0 success; 1 a sweep finished with failed cells; 2 bad input or a failed run
(one message on stderr, no traceback); 128 + N when stopped by signal N (130 for Ctrl-C, 143 for
SIGTERM). ``CL_BENCH_TRACEBACK=1`` re-raises instead, for debugging.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cl_bench import __version__
from cl_bench.errors import CLBenchError, RunInterrupted, Stopped, exit_status
from strategies.errors import StrategiesError

#: modules that contribute sub-commands, in the order ``--help`` lists them
COMMAND_MODULES = (
    "cl_bench.commands.run",
    "cl_bench.commands.report",
    "cl_bench.commands.sweep",
    "cl_bench.commands.data",
    "cl_bench.commands.train_one",
    "cl_bench.commands.bench",
    "cl_bench.commands.list_available",
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


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (a cluster scheduler ending a job, ``kill PID``) stops like Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(message: str) -> None:
    print(f"cl-bench: {message}", file=sys.stderr, flush=True)


def _os_error_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = os.path.dirname(str(exc.filename)) if exc.filename else "the results folder"
        return (f"error: the disk is full: no space left to write{where} "
                f"({exc.strerror or exc}). Free space on that disk (df -h {folder}) or write "
                "the results to another disk with --out DIR")
    return (f"error: cannot access{where}: {exc.strerror or exc}; check that the path exists, "
            "that this user may write it and that the disk is not full")


def _error(exc: BaseException, text: str) -> int:
    _say(text)
    hint = getattr(exc, "run_hint", None)
    if hint:
        _say(hint)
    return 2


def main(argv: list[str] | None = None) -> int:
    # progress and log lines reach a file or pipe when they are printed, not when a buffer fills
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = bool(os.environ.get("CL_BENCH_TRACEBACK"))
    try:
        with _sigterm_stops():
            return int(args.func(args) or 0)
    except RunInterrupted as exc:
        _say(exc.message)
        return exit_status(exc.signum)
    except KeyboardInterrupt as exc:  # before a run folder existed, or another command
        signum = getattr(exc, "signum", signal.SIGINT)
        _say(f"stopped by {signal.Signals(signum).name}")
        return exit_status(signum)
    except (CLBenchError, StrategiesError) as exc:
        if debug:
            raise
        return _error(exc, f"error: {exc}")
    except OSError as exc:  # permissions, a full disk: the environment, not a bug
        if debug:
            raise
        return _error(exc, _os_error_message(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
