"""Run one sweep cell where it is scheduled (this process, a worker process or a Ray task).

:func:`execute_cell` never raises for a failing run: it returns a :class:`CellResult` with the
error, so one bad cell does not stop the others (its ``manifest.json`` says ``failed`` and the
traceback is in the cell's log, ``<out>/<experiment>/logs/<run_id>.log``).

A cell folder that exists already is skipped when its manifest says ``complete`` and resumed
(``run_experiment(resume=...)``) otherwise; a folder in which nothing was measured yet (no
``records.csv``, e.g. the data folder was missing) is started afresh.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cl_bench.config import relevant_to_run
from cl_bench.data.orders import same_order
from cl_bench.errors import RunError
from cl_bench.run.layout import CHECKPOINTS, RunLayout
from cl_bench.sweep.grid import Cell

#: the state of a cell folder before the sweep runs it
NEW, COMPLETE, INCOMPLETE = "new", "complete", "incomplete"
#: the outcome of a cell
DONE, SKIPPED, FAILED = "complete", "skipped", "failed"
#: folders of a run left on the worker when its files travel back to the driver (Ray's
#: ``return`` mode): students' checkpoints are only needed to resume, and are large
NOT_RETURNED = (CHECKPOINTS,)
LOGS = "logs"


@dataclass
class CellResult:
    """What became of one cell."""

    run_id: str
    status: str  # complete | skipped | failed
    error: str | None = None
    wall_s: float = 0.0
    host: str = ""
    #: Ray only: every attempt of the cell (node, host, start, end, outcome), for sweep.json
    attempts: list[dict[str, Any]] | None = None


def cell_state(run_dir: Path) -> str:
    """``new`` (no folder), ``complete`` (manifest says so) or ``incomplete`` (anything else)."""
    manifest = RunLayout(run_dir).manifest
    if not run_dir.exists():
        return NEW
    try:
        status = json.loads(manifest.read_text()).get("status")
    except (OSError, ValueError):
        return INCOMPLETE
    return COMPLETE if status == "complete" else INCOMPLETE


def config_differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configurations.

    Keys missing from ``stored`` are not differences (a newer cl-bench added a field with a
    default since the cell ran). ``data.order`` is compared by the tasks it gives
    (:func:`cl_bench.data.orders.same_order`): folders made when sweeps wrote ``reversed`` out
    as the explicit list of categories still match.
    """
    diffs = []
    for key, value in wanted.items():
        path = f"{prefix}{key}"
        if key not in stored:
            continue
        old = stored[key]
        if path == "data.order" and same_order(old, value, wanted.get("order_seed", 0)):
            continue
        if isinstance(value, dict) and isinstance(old, dict):
            diffs += config_differences(old, value, f"{path}.")
        elif _plain(old) != _plain(value):
            diffs.append(f"{path}: {old!r} in the folder, {value!r} now")
    return diffs


def run_config_differences(stored: dict, wanted: dict) -> list[str]:
    """:func:`config_differences` of what each configuration runs with
    (:func:`cl_bench.config.relevant_to_run`): a strength of another strategy, or one written
    for another detector, never makes a finished cell "another configuration"."""
    return config_differences(relevant_to_run(stored), relevant_to_run(wanted))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def resolve_cell_config(cell: Cell) -> Any:
    """The validated :class:`~cl_bench.config.ExperimentConfig` of ``cell``, with the readable
    order name in ``data.order_name`` (the ``order`` column of its records); a named order such
    as ``reversed`` is resolved by the data layer when the run builds its benchmark."""
    from cl_bench.config import validate

    raw = {**cell.config, "data": {**cell.config.get("data", {}), "order_name": cell.order}}
    return validate(raw, source=f"sweep cell {cell.run_id}")


class CellLog:
    """Appends a cell's console output to its log file; echoes it when ``echo`` is set."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{message}\n")
        if self.echo is not None:
            self.echo(message)


def execute_cell(cell: Cell, out_root: str, echo: Callable[[str], None] | None = None,
                 threads: int | None = None) -> CellResult:
    """Run, resume or skip ``cell`` into ``out_root/<experiment>/<run_id>``; never raises."""
    import platform

    started = time.perf_counter()
    host = platform.node()
    experiment_dir = Path(out_root) / cell.experiment
    run_dir = experiment_dir / cell.run_id
    log = CellLog(experiment_dir / LOGS / f"{cell.run_id}.log", echo)
    log(f"== cell {cell.run_id} ({cell.label}) on {host}")
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        status = _run(cell, Path(out_root), run_dir, log)
        error = None
    except Exception as exc:  # a failing cell is recorded; the sweep goes on
        status, error = FAILED, f"{type(exc).__name__}: {exc}"
        log(traceback.format_exc().rstrip())
    wall = time.perf_counter() - started
    log(f"== cell {cell.run_id}: {status} in {wall:.1f} s" + (f" ({error})" if error else ""))
    return CellResult(cell.run_id, status, error, wall, host)


def _run(cell: Cell, out_root: Path, run_dir: Path, log: Callable[[str], None]) -> str:
    from cl_bench.run.experiment import run_experiment

    cfg = resolve_cell_config(cell)
    state = cell_state(run_dir)
    if state != NEW:
        check_same_config(run_dir, cfg)
    if state == COMPLETE:
        log(f"cell {cell.run_id} is complete already: skipped")
        return SKIPPED
    if state == INCOMPLETE and not RunLayout(run_dir).records.is_file():
        log(f"cell folder {run_dir} holds no records yet: starting it afresh")
        shutil.rmtree(run_dir)
        state = NEW
    if state == INCOMPLETE:
        run_experiment(None, resume=run_dir, log=log, progress=False)
    else:
        run_experiment(cfg, out_root=out_root, log=log, progress=False, run_id=cell.run_id)
    return DONE


def check_same_config(run_dir: Path, cfg: Any) -> None:
    """Raise :class:`RunError` when ``run_dir`` was made with another configuration."""
    import yaml

    path = RunLayout(run_dir).config
    if not path.is_file():
        return
    stored = yaml.safe_load(path.read_text()) or {}
    wanted = cfg.model_dump(mode="json")
    diffs = run_config_differences(stored, wanted)
    if diffs:
        raise RunError(
            f"{run_dir} was made with a different configuration ({'; '.join(diffs[:5])}); "
            "the sweep neither reuses nor overwrites it: delete the folder, or give the sweep "
            "another experiment name or --out")
