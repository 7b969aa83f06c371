"""``cl-bench bench cli``: how long the command line takes to answer, as ratios to Python itself.

Each command runs in a fresh interpreter (``subprocess``), as a user runs it; the commands are
timed in alternation, ``--repeat`` rounds, and the median wall time of each is compared, so
that a load that changes during the measurement weighs on every contender alike. Figures:

- ``cl-bench --help`` minus ``python -c pass`` (the goal: at most 0.3 s);
- ``cl-bench list`` over ``python -c "import torch"`` (the goal: at most 1.2x; listing the
  detectors imports torch, nothing more should be needed);
- with ``--run RUN_DIR``: ``cl-bench report RUN_DIR`` (written to a temporary folder), and with
  ``--baseline-src DIR`` the same report made by the code checked out in DIR (an older commit,
  e.g. ``git worktree add /tmp/base main``, put first on ``PYTHONPATH``), and their ratio (the
  goal: the old report takes at least 2x as long).

Every command runs in an empty temporary folder, with the code it times first on
``PYTHONPATH``: ``python -m`` puts the working directory first on ``sys.path``, so a command
started in a checkout would import that checkout's ``cl_bench`` whatever ``PYTHONPATH`` says.
Before timing, each contender is asked where it imports ``cl_bench`` from, and the run stops if
the baseline would not import the baseline's code.

The machine's load average (``os.getloadavg``) is printed before and after: on a shared machine
the absolute times mean little, the ratios more.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cl_bench.errors import ConfigError, RunError

#: (contender, budget) goals: --help within 0.3 s of python, list within 1.2x import torch,
#: the baseline's report at least 2x as long as this code's
HELP_EXTRA_S, LIST_RATIO, REPORT_SPEED_UP = 0.3, 1.2, 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cli", help="how fast the command line answers (ratios)",
                              description=__doc__.strip().splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="rounds of every command (median)")
    p.add_argument("--run", type=Path, default=None, metavar="RUN_DIR",
                   help="a finished run folder: also time cl-bench report on it")
    p.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                   help="a checkout of older cl-bench code: also time its report of --run")
    p.set_defaults(func=run)


def _cl_bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "cl_bench.cli", *args]


def _source_first(source: Path) -> dict:
    """The environment that puts the checkout ``source`` first on ``PYTHONPATH``."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(source.resolve()),
                                                        os.environ.get("PYTHONPATH")]))}


def this_source() -> Path:
    """The folder that holds the ``cl_bench`` package running now."""
    import cl_bench

    return Path(cl_bench.__file__).resolve().parent.parent


def contenders(args: argparse.Namespace, out: Path) -> dict[str, tuple[list[str], dict]]:
    """name -> (command, extra environment); the cl-bench commands import this code, the
    baseline imports the code in ``--baseline-src``."""
    now = _source_first(this_source())
    found: dict[str, tuple[list[str], dict]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "cl-bench --help": (_cl_bench("--help"), now),
        "python -c 'import torch'": ([sys.executable, "-c", "import torch"], {}),
        "cl-bench list": (_cl_bench("list"), now),
    }
    if args.run is not None:
        found["cl-bench report"] = (_cl_bench("report", str(args.run.resolve()), "--out",
                                              str(out / "now")), now)
        if args.baseline_src is not None:
            found["cl-bench report (baseline)"] = (
                _cl_bench("report", str(args.run.resolve()), "--out", str(out / "baseline")),
                _source_first(args.baseline_src))
    return found


def imported_from(extra_env: dict, cwd: Path) -> Path:
    """Where a command started with ``extra_env`` in ``cwd`` imports ``cl_bench`` from (the
    folder that holds the package)."""
    probe = [sys.executable, "-c", "import cl_bench, pathlib; "
             "print(pathlib.Path(cl_bench.__file__).resolve().parent.parent)"]
    result = subprocess.run(probe, capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, **extra_env})
    if result.returncode != 0:
        raise RunError(f"cl_bench cannot be imported with PYTHONPATH="
                       f"{extra_env.get('PYTHONPATH', '')!r}:\n{result.stderr[-2000:]}")
    return Path(result.stdout.strip())


def check_sources(commands: dict[str, tuple[list[str], dict]], baseline: Path | None,
                  cwd: Path) -> None:
    """Refuse to time a contender that would import the wrong ``cl_bench``: the current
    commands must import this code, the baseline the code in ``baseline``."""
    expected = {name: this_source() for name, (command, _) in commands.items()
                if "cl_bench.cli" in command}
    if baseline is not None and "cl-bench report (baseline)" in commands:
        expected["cl-bench report (baseline)"] = baseline.resolve()
    for name, want in expected.items():
        got = imported_from(commands[name][1], cwd)
        if got != want:
            raise RunError(f"{name}: would import cl_bench from {got}, not from {want}; "
                           "the timing would compare the wrong code")


def timed(command: list[str], extra_env: dict, cwd: Path | None = None) -> float:
    """Wall seconds of ``command`` run in ``cwd``; a failure is an error that shows its
    output."""
    env = {**os.environ, **extra_env}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RunError(f"{' '.join(command)} exited with {result.returncode}:\n"
                       f"{result.stderr[-2000:]}")
    return seconds


def _check(args: argparse.Namespace) -> None:
    if args.repeat < 1:
        raise ConfigError(f"--repeat must be >= 1 (got {args.repeat})")
    if args.run is not None and not (args.run / "records.csv").is_file():
        raise ConfigError(f"--run {args.run}: no records.csv there; give a finished run folder")
    if args.baseline_src is not None and args.run is None:
        raise ConfigError("--baseline-src needs --run RUN_DIR (the report it times)")
    if args.baseline_src is not None and not (args.baseline_src / "cl_bench").is_dir():
        raise ConfigError(f"--baseline-src {args.baseline_src}: no cl_bench package there; "
                          "give a checkout of cl-bench (git worktree add DIR COMMIT)")


def summary(medians: dict[str, float]) -> list[str]:
    """The goals' lines: each figure, its budget and whether it is met."""
    lines = []
    extra = medians["cl-bench --help"] - medians["python -c pass"]
    lines.append(f"--help - python -c pass: {extra:.2f} s (goal <= {HELP_EXTRA_S} s: "
                 f"{'met' if extra <= HELP_EXTRA_S else 'NOT met'})")
    ratio = medians["cl-bench list"] / medians["python -c 'import torch'"]
    lines.append(f"list / import torch: {ratio:.2f}x (goal <= {LIST_RATIO}x: "
                 f"{'met' if ratio <= LIST_RATIO else 'NOT met'})")
    if "cl-bench report (baseline)" in medians:
        speed_up = medians["cl-bench report (baseline)"] / medians["cl-bench report"]
        lines.append(f"report: baseline / now: {speed_up:.2f}x (goal >= {REPORT_SPEED_UP}x: "
                     f"{'met' if speed_up >= REPORT_SPEED_UP else 'NOT met'})")
    return lines


def run(args: argparse.Namespace) -> int:
    _check(args)
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; {args.repeat} rounds, commands in alternation")
    with tempfile.TemporaryDirectory(prefix="cl-bench-cli-") as tmp:
        workdir = Path(tmp) / "cwd"
        workdir.mkdir()
        commands = contenders(args, Path(tmp))
        check_sources(commands, args.baseline_src, workdir)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_index in range(args.repeat):
            for name, (command, env) in commands.items():
                times[name].append(timed(command, env, workdir))
            print(f"# round {round_index + 1}/{args.repeat}: " + ", ".join(
                f"{name} {times[name][-1]:.2f} s" for name in commands), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<30} median {value:7.2f} s  (min {min(times[name]):.2f}, "
              f"max {max(times[name]):.2f})")
    for line in summary(medians):
        print(line)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0
