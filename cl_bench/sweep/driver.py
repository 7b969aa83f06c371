"""The sweep driver: decide which cells to run, hand them to a backend, record, report.

The driver checks every cell folder first: a complete one made with the same configuration is
skipped (without starting a worker), others are queued. As cells end it rewrites
``<out>/<experiment>/sweep.json`` (every cell with its values, status, error, wall time, host,
run folder and log) so a sweep killed half-way still says where it stood. At the end it lists
the failed cells and builds the combined report of every cell that has records
(:func:`cl_bench.report.build_report`, ``<out>/<experiment>/report/report.md``), which
aggregates the per-run continual metrics over seeds and task orders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from cl_bench.config import validate
from cl_bench.errors import ConfigError, DataError
from cl_bench.io import atomic_write_json
from cl_bench.run.layout import RunLayout
from cl_bench.run.lock import SweepLock
from cl_bench.sweep.execute import (
    COMPLETE,
    DONE,
    FAILED,
    INCOMPLETE,
    LOGS,
    NEW,
    SKIPPED,
    CellResult,
    cell_state,
    run_config_differences,
)
from cl_bench.sweep.grid import Cell, Sweep

BACKENDS = ("local", "ray")
PENDING = "pending"
SWEEP_FILE = "sweep.json"
REPORT_DIR = "report"
Log = Callable[[str], None]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- what is there already ---------------------------------------------------------------------
@dataclass
class PlannedCell:
    cell: Cell
    state: str  # new | complete | incomplete
    mismatch: str | None = None  # why a complete folder cannot be reused

    @property
    def action(self) -> str:
        if self.mismatch:
            return "fail (other config)"
        return {NEW: "run", COMPLETE: "skip (complete)", INCOMPLETE: "resume"}[self.state]


def plan(sweep: Sweep, out_root: Path) -> list[PlannedCell]:
    """The state of every cell's folder below ``out_root/<experiment>``."""
    experiment_dir = Path(out_root) / sweep.experiment
    planned = []
    for cell in sweep.cells:
        run_dir = experiment_dir / cell.run_id
        state = cell_state(run_dir)
        mismatch = stored_config_mismatch(cell, run_dir) if state == COMPLETE else None
        planned.append(PlannedCell(cell, state, mismatch))
    return planned


def stored_config_mismatch(cell: Cell, run_dir: Path) -> str | None:
    """Why the completed folder of ``cell`` was made with another configuration (None if not)."""
    path = RunLayout(run_dir).config
    if not path.is_file():
        return None
    stored = yaml.safe_load(path.read_text()) or {}
    wanted = validate(cell.config, source=f"cell {cell.run_id}").model_dump(mode="json")
    wanted["data"].pop("order_name", None)
    diffs = run_config_differences(stored, wanted)
    if not diffs:
        return None
    return (f"{run_dir} is complete but was made with a different configuration "
            f"({'; '.join(diffs[:5])}); delete the folder, or give the sweep another "
            "experiment name or --out")


def describe_plan(planned: list[PlannedCell]) -> str:
    """A table of the cells and what the sweep would do with each (``--dry-run``)."""
    width = max(len(p.cell.run_id) for p in planned)
    lines = [f"{'#':>4}  {'run id':<{width}}  {'action':<19}  values"]
    for i, p in enumerate(planned, 1):
        lines.append(f"{i:>4}  {p.cell.run_id:<{width}}  {p.action:<19}  {p.cell.label}")
    counts: dict[str, int] = {}
    for p in planned:
        counts[p.action] = counts.get(p.action, 0) + 1
    lines.append(f"{len(planned)} cell(s): " + ", ".join(f"{n} {a}" for a, n in counts.items()))
    return "\n".join(lines)


def missing_data_roots(cells: list[Cell]) -> list[str]:
    """``data.root`` folders of ``source: folder`` cells that do not exist on this machine."""
    missing = []
    for cell in cells:
        data = cell.config.get("data") or {}
        root = data.get("root")
        if data.get("source") == "folder" and root and not Path(root).expanduser().is_dir():
            missing.append(str(root))
    return sorted(set(missing))


# ---- sweep.json --------------------------------------------------------------------------------
@dataclass
class SweepRecord:
    """``sweep.json``: the sweep's settings and every cell's status, rewritten as cells end."""

    path: Path
    header: dict[str, Any]
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set(self, cell: Cell, status: str, **fields: Any) -> None:
        entry = self.cells.setdefault(cell.run_id, {
            "run_id": cell.run_id, "values": cell.values, "order": cell.order,
            "run_dir": cell.run_id, "log": f"{LOGS}/{cell.run_id}.log"})
        entry.update(status=status, **fields)

    def counts(self) -> dict[str, int]:
        counts = {DONE: 0, SKIPPED: 0, FAILED: 0, PENDING: 0}
        for entry in self.cells.values():
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        return counts

    def save(self, **fields: Any) -> None:
        self.header.update(fields, updated=utc_now(), counts=self.counts())
        atomic_write_json(self.path, {**self.header, "cells": list(self.cells.values())})


# ---- the sweep ---------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    experiment_dir: Path
    results: dict[str, CellResult]
    wall_s: float
    report_dir: Path | None = None

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results.values() if r.status == FAILED]


def run_sweep(sweep: Sweep, out_root: str | Path = "results", backend: str = "local",
              jobs: int = 1, threads: int | None = None, address: str | None = None,
              ray_results: str = "shared", report: bool = True, log: Log = print,
              gpus_per_cell: float = 1.0) -> SweepOutcome:
    """Run every cell of ``sweep`` (skipping complete ones) and build the combined report."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: choose {' or '.join(BACKENDS)}")
    if backend == "local" and (address or ray_results != "shared" or gpus_per_cell != 1.0):
        raise ConfigError("--address, --ray-results and --gpus-per-cell apply to --backend ray "
                          "only")
    if backend == "ray" and jobs != 1:
        raise ConfigError("--jobs applies to --backend local; Ray runs as many cells at once as "
                          "the cluster has CPUs (or GPUs) for")
    if backend == "ray":
        from cl_bench.sweep.ray_backend import RayOptions

        RayOptions(gpus_per_cell=gpus_per_cell).check()  # before anything is written
    started = time.perf_counter()
    out_root = Path(out_root)
    experiment_dir = out_root / sweep.experiment
    planned = plan(sweep, out_root)
    missing = missing_data_roots([p.cell for p in planned if p.state != COMPLETE])
    if missing and backend == "local":
        raise ConfigError(f"data.root: folder {', '.join(missing)} does not exist; set data.root "
                          "(e.g. --set data.root=/data/mvtec_ad) to the folder that holds "
                          "<category>/train/good")
    if missing:
        log(f"warning: data.root {', '.join(missing)} does not exist on this machine; the Ray "
            "workers must find it at that path")
    experiment_dir.mkdir(parents=True, exist_ok=True)
    with SweepLock(experiment_dir):
        planned = plan(sweep, out_root)  # again, now that no other sweep can change the folders
        return _run_locked(sweep, planned, out_root, experiment_dir, backend, jobs, threads,
                           address, ray_results, gpus_per_cell, report, log, started)


def _run_locked(sweep: Sweep, planned: list[PlannedCell], out_root: Path, experiment_dir: Path,
                backend: str, jobs: int, threads: int | None, address: str | None,
                ray_results: str, gpus_per_cell: float, report: bool, log: Log,
                started: float) -> SweepOutcome:
    """:func:`run_sweep` once the sweep folder is locked."""
    record = SweepRecord(experiment_dir / SWEEP_FILE, {
        "experiment": sweep.experiment, "source": sweep.source, "grid": sweep.grid,
        "exclude": sweep.exclude, "backend": backend, "jobs": jobs, "threads": threads,
        "address": address, "ray_results": ray_results if backend == "ray" else None,
        "gpus_per_cell": gpus_per_cell if backend == "ray" else None,
        "out": str(out_root), "started": utc_now(), "finished": None})
    results: dict[str, CellResult] = {}
    todo: list[Cell] = []
    for p in planned:
        if p.mismatch:
            results[p.cell.run_id] = CellResult(p.cell.run_id, FAILED, p.mismatch)
            record.set(p.cell, FAILED, error=p.mismatch)
        elif p.state == COMPLETE:
            results[p.cell.run_id] = CellResult(p.cell.run_id, SKIPPED)
            record.set(p.cell, SKIPPED, error=None)
        else:
            todo.append(p.cell)
            record.set(p.cell, PENDING, error=None)
    record.save()
    skipped = sum(r.status == SKIPPED for r in results.values())
    log(f"sweep {sweep.experiment}: {len(sweep.cells)} cell(s), {skipped} complete already "
        f"(skipped), {len(todo)} to run with the {backend} backend"
        + (f" ({jobs} worker processes)" if backend == "local" and jobs > 1 else ""))
    log(f"sweep folder: {experiment_dir} (status in {SWEEP_FILE}, cell logs in {LOGS}/)")

    try:
        for done, (cell, result) in enumerate(_backend(backend, todo, out_root, jobs, threads,
                                                       address, ray_results, gpus_per_cell,
                                                       log), 1):
            result = agree_with_manifest(experiment_dir / cell.run_id, result)
            results[cell.run_id] = result
            record.set(cell, result.status, error=result.error, wall_s=round(result.wall_s, 2),
                       host=result.host,
                       **({"attempts": result.attempts} if result.attempts else {}))
            record.save()
            detail = f": {result.error}" if result.error else ""
            log(f"[{done}/{len(todo)}] {cell.run_id}: {result.status} in {result.wall_s:.1f} s"
                f"{detail}")
    finally:
        for cell in sweep.cells:  # a cell another process completed meanwhile is complete
            entry = record.cells.get(cell.run_id)
            if entry and entry["status"] in (FAILED, PENDING) and cell_state(
                    experiment_dir / cell.run_id) == COMPLETE and not _mismatch(planned, cell):
                record.set(cell, DONE, error=None)
                results[cell.run_id] = agree_with_manifest(
                    experiment_dir / cell.run_id,
                    results.get(cell.run_id) or CellResult(cell.run_id, FAILED))
        record.save(finished=utc_now(), wall_s=round(time.perf_counter() - started, 2))

    outcome = SweepOutcome(experiment_dir, results, time.perf_counter() - started)
    log(summary_text(outcome, sweep))
    if report:
        outcome.report_dir = build_sweep_report(sweep, experiment_dir, log)
    return outcome


def agree_with_manifest(run_dir: Path, result: CellResult) -> CellResult:
    """A failed cell whose folder's manifest says ``complete`` was finished by another process
    (a ``cl-bench run --resume`` of the cell held its lock): it is complete, and sweep.json
    says so instead of contradicting the manifest."""
    if result.status == FAILED and cell_state(run_dir) == COMPLETE:
        return CellResult(result.run_id, DONE, None, result.wall_s, result.host, result.attempts)
    return result


def _mismatch(planned: list[PlannedCell], cell: Cell) -> bool:
    return any(p.cell.run_id == cell.run_id and p.mismatch for p in planned)


def _backend(backend: str, cells: list[Cell], out_root: Path, jobs: int, threads: int | None,
             address: str | None, ray_results: str, gpus_per_cell: float,
             log: Log) -> Iterator[tuple[Cell, CellResult]]:
    if not cells:
        return iter(())
    if backend == "ray":
        from cl_bench.sweep.ray_backend import RayOptions, run_ray

        return run_ray(cells, str(out_root), address=address, results=ray_results,
                       threads=threads or 1, options=RayOptions(gpus_per_cell=gpus_per_cell),
                       echo=log)
    from cl_bench.sweep.local import run_local

    return run_local(cells, str(out_root), jobs=jobs, threads=threads,
                     echo=lambda message: log(f"  {message}"))


def summary_text(outcome: SweepOutcome, sweep: Sweep) -> str:
    counts: dict[str, int] = {}
    for result in outcome.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    lines = [f"\nsweep {sweep.experiment}: " + ", ".join(
        f"{counts.get(s, 0)} {s}" for s in (DONE, SKIPPED, FAILED))
        + f" of {len(sweep.cells)} cell(s) in {outcome.wall_s:.1f} s"]
    if outcome.failed:
        lines.append("failed cells:")
        for result in outcome.failed:
            lines.append(f"  {result.run_id}: {result.error}")
            lines.append(f"    log: {outcome.experiment_dir / LOGS / (result.run_id + '.log')}")
        lines.append("a restarted sweep runs the failed cells again (resuming where they "
                     "stopped) and skips the complete ones")
    return "\n".join(lines)


def cell_run_dirs(sweep: Sweep, experiment_dir: Path) -> list[Path]:
    """The run folders of this sweep's cells that hold records."""
    return [experiment_dir / c.run_id for c in sweep.cells
            if RunLayout(experiment_dir / c.run_id).records.is_file()]


def build_sweep_report(sweep: Sweep, experiment_dir: Path, log: Log) -> Path | None:
    """Console summary and ``report/`` over the sweep's cells (not other runs in the folder)."""
    from cl_bench.report import build_report, console_summary

    run_dirs = cell_run_dirs(sweep, experiment_dir)
    if not run_dirs:
        log("report: no cell has records yet; nothing to report")
        return None
    try:
        log("\n" + console_summary(run_dirs))
        report_dir = build_report(run_dirs, experiment_dir / REPORT_DIR)
    except DataError as exc:
        log(f"report: not built: {exc}")
        return None
    log(f"\nreport: {report_dir / 'report.md'} ({len(run_dirs)} run folder(s), aggregated over "
        "seeds and task orders)")
    return report_dir
