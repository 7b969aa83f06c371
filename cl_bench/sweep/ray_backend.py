"""The Ray backend (optional extra ``pip install -e ".[ray]"``): each cell one Ray task.

A task asks for ``threads`` CPUs and, when the cluster has GPUs, for ``gpus_per_cell`` of one
GPU (default a whole one, so two cells never share a GPU; a fraction such as 0.5 lets two cells
share one, on the user's request). Ray then sets ``CUDA_VISIBLE_DEVICES`` so the run's
``device: auto`` finds exactly that GPU. Tasks are spread over the nodes (Ray's ``SPREAD``
strategy). Without an address a local Ray instance is started on this machine;
``address="auto"`` (or ``"host:6379"``) joins a running cluster, whose nodes must have cl-bench
and its dependencies installed and the data at the same path.

Where results go (``results``):

- ``"shared"``: every task writes its run folder straight into the results folder, which must
  be the same path on every node (one machine, or a network filesystem). Incomplete cells of an
  earlier sweep, or of an attempt lost with its node, are resumed.
- ``"return"``: every task runs in a private temporary folder (``$CL_BENCH_SCRATCH`` or the
  node's temporary folder) and sends its files (all but ``checkpoints/``) home in chunks
  (:mod:`cl_bench.sweep.ray_transfer`); the driver installs the run folder with one rename once
  every file has landed intact. An incomplete cell starts afresh.

Retry policy: an attempt lost with its node or its worker process (node gone, process killed,
out of memory) is run again on any node, up to ``retries`` more times (Ray's ``max_retries``);
a cell that fails for its own reasons (diverged loss, bad option, missing data) is recorded as
failed and not retried by Ray (``retry_exceptions=False``); running the sweep command again
tries it once more. Every attempt (node, host, start, end, outcome) is in the cell's
``attempts`` in ``sweep.json``.

Ray is imported inside the functions only, so the rest of cl-bench works without it.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cl_bench.errors import ConfigError, RunError
from cl_bench.sweep.execute import FAILED, CellResult, execute_cell
from cl_bench.sweep.grid import Cell
from cl_bench.sweep.ray_transfer import (
    CHUNK_BYTES,
    CellInbox,
    clear_staging,
    land_files,
    scratch_root,
    send_folder,
)

RESULT_MODES = ("shared", "return")
#: more attempts of a cell whose node or worker process was lost (Ray's ``max_retries``)
NODE_LOSS_RETRIES = 3
#: how long an attempt waits for a run folder's lock held by the attempt before it, whose node
#: was lost a moment ago and whose process may not have ended yet
LOCK_WAIT_S = 120.0
LOST = "lost"


@dataclass(frozen=True)
class RayOptions:
    """How cells ask the cluster for resources and survive lost nodes."""

    #: share of one accelerator per cell: 1 = a whole one (the default); 0.5 = two cells per
    #: accelerator, when the user asks for it
    gpus_per_cell: float = 1.0
    #: the resource that stands for an accelerator ("GPU"; the tests use a custom one)
    accelerator: str = "GPU"
    retries: int = NODE_LOSS_RETRIES
    chunk_bytes: int = CHUNK_BYTES

    def check(self) -> RayOptions:
        if not 0 < self.gpus_per_cell <= 1:
            raise ConfigError(f"--gpus-per-cell {self.gpus_per_cell:g}: give a share of one GPU "
                              "in (0, 1], e.g. 1 (a GPU per cell) or 0.5 (two cells per GPU)")
        if self.retries < 0:
            raise ConfigError(f"retries {self.retries}: give 0 or more")
        return self


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray, an optional extra: pip install -e '.[ray]' "
                          "(or pip install 'ray[default]'); or use --backend local") from None
    return ray


def cell_resources(cell: Cell, cluster: dict[str, float], threads: int,
                   options: RayOptions) -> dict[str, Any]:
    """The Ray task options asking for the cell's CPUs and accelerator share."""
    share = cell_gpus(cell, float(cluster.get(options.accelerator, 0)), options.gpus_per_cell)
    if options.accelerator == "GPU":
        return {"num_cpus": threads, "num_gpus": share}
    return {"num_cpus": threads, "resources": {options.accelerator: share} if share else {}}


def cell_gpus(cell: Cell, cluster_gpus: float, share: float = 1.0) -> float:
    """``share`` when the cluster has GPUs and the cell may use one (its device is not
    ``cpu``), else 0."""
    return share if cluster_gpus > 0 and cell.config.get("device", "auto") != "cpu" else 0


def wait_for_run_lock(run_dir: Path, limit_s: float = LOCK_WAIT_S) -> None:
    """Wait (at most ``limit_s``) until nobody holds ``run_dir``'s lock: a retried attempt may
    start before the process of the lost attempt has noticed that its node is gone. If the lock
    stays held, the run itself then stops with the holder named."""
    from filelock import FileLock, Timeout

    from cl_bench.run.lock import LOCK_NAME

    lock = run_dir / LOCK_NAME
    if lock.exists():
        with contextlib.suppress(Timeout), FileLock(str(lock), timeout=limit_s):
            pass


def ray_cell(cell: Cell, out_root: str, results: str, threads: int, inbox: Any,
             chunk_bytes: int) -> tuple[CellResult, int, dict | None]:
    """The body of one Ray task: (result, attempt number, listing of the files sent home)."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    attempt = ray.get(inbox.begin.remote(cell.run_id, node_id, platform.node()))
    try:
        if results == "return":
            scratch = Path(tempfile.mkdtemp(prefix="cl-bench-cell-", dir=scratch_root()))
            try:
                result = execute_cell(cell, str(scratch), threads=threads)
                listing = send_folder(ray, inbox, scratch / cell.experiment, cell.run_id,
                                      attempt, chunk_bytes)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return result, attempt, listing
        wait_for_run_lock(Path(out_root) / cell.experiment / cell.run_id)
        return execute_cell(cell, out_root, threads=threads), attempt, None
    finally:
        ray.get(inbox.end.remote(cell.run_id, attempt))


def run_ray(cells: Sequence[Cell], out_root: str, address: str | None = None,
            results: str = "shared", threads: int = 1, options: RayOptions | None = None,
            echo: Callable[[str], None] | None = print) -> Iterator[tuple[Cell, CellResult]]:
    """Run ``cells`` as Ray tasks and yield ``(cell, result)`` as each one ends.

    Uses the Ray instance this process is connected to already (tests connect to theirs);
    else connects to ``address`` or starts a local one, and shuts it down at the end.
    """
    options = (options or RayOptions()).check()
    if results not in RESULT_MODES:
        raise ConfigError(f"--ray-results {results!r}: choose {' or '.join(RESULT_MODES)}")
    if threads < 1:
        raise ConfigError(f"--threads {threads}: give 1 or more")
    if not cells:
        return
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"address": address}
        if address is None:
            init["include_dashboard"] = False
        try:
            ray.init(**init)
        except ConnectionError as exc:
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({exc}); "
                              "start one with `ray start --head` or omit --address to start "
                              "a local instance") from None
    elif address is not None and echo:
        echo(f"ray: this process is connected to a Ray instance already; --address {address} "
             "is not used")
    try:
        yield from _run(ray, cells, Path(out_root).resolve(), results, threads, options, echo)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray: Any, cells: Sequence[Cell], root: Path, results: str, threads: int,
         options: RayOptions, echo: Callable[[str], None] | None
         ) -> Iterator[tuple[Cell, CellResult]]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cluster = ray.cluster_resources()
    gpus = float(cluster.get(options.accelerator, 0))
    if echo:
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        echo(f"ray: cluster of {nodes} node(s) with {cluster.get('CPU', 0):g} CPU(s) and "
             f"{gpus:g} {options.accelerator}(s); each cell asks for {threads} CPU(s)"
             + (f" and {options.gpus_per_cell:g} {options.accelerator} (unless its device is "
                "cpu)" if gpus else "")
             + f"; a cell lost with its node runs again up to {options.retries} time(s)")
    experiment_dir = root / cells[0].experiment
    experiment_dir.mkdir(parents=True, exist_ok=True)
    if results == "return":
        for cell in cells:  # what attempts of a killed driver left half-sent
            clear_staging(experiment_dir, cell.run_id)
    # the inbox runs beside this driver, so returned files land on the driver's filesystem
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(),
                                          soft=False)
    inbox = ray.remote(CellInbox).options(num_cpus=0, scheduling_strategy=here).remote(
        str(experiment_dir))
    task = ray.remote(ray_cell)
    pending = {}
    for cell in cells:
        submit = task.options(**cell_resources(cell, cluster, threads, options),
                              max_retries=options.retries, retry_exceptions=False,
                              scheduling_strategy="SPREAD")
        pending[submit.remote(cell, str(root), results, threads, inbox,
                              options.chunk_bytes)] = cell
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            cell = pending.pop(ref)
            result, answered = _result_of(ray, ref, cell, experiment_dir, options)
            result.attempts = attempt_story(ray.get(inbox.history.remote(cell.run_id)),
                                            answered, result.status)
            yield cell, result


def _result_of(ray: Any, ref: Any, cell: Cell, experiment_dir: Path,
               options: RayOptions) -> tuple[CellResult, int | None]:
    """The task's result (its files landed) and the attempt that gave it; a task that Ray
    could not finish fails."""
    try:
        result, attempt, listing = ray.get(ref)
    except Exception as exc:  # lost more often than the retries allow, or a bug in ray_cell
        return CellResult(cell.run_id, FAILED, f"ray task failed (a lost cell runs at most "
                          f"{options.retries + 1} times): {type(exc).__name__}: {exc}"), None
    if listing is not None:
        try:
            land_files(experiment_dir, cell.run_id, attempt, listing)
        except (RunError, OSError) as exc:
            result.status, result.error = FAILED, f"{type(exc).__name__}: {exc}"
    return result, attempt


def attempt_story(history: list[dict[str, Any]], answered: int | None,
                  status: str) -> list[dict[str, Any]]:
    """Every attempt with its outcome: the one that answered has the cell's ``status``; the
    others were lost with their node or worker process."""
    return [{**entry, "outcome": status if entry["attempt"] == answered else LOST}
            for entry in history]
