"""The Ray backend (optional extra ``pip install -e ".[ray]"``): each cell one Ray task.

A task asks for ``threads`` CPUs, and for one GPU when the cluster has GPUs (Ray then sets
``CUDA_VISIBLE_DEVICES`` so the run's ``device: auto`` finds exactly that GPU). Without an
address a local Ray instance is started on this machine; ``address="auto"`` (or
``"ray://host:10001"``, ``"host:6379"``) joins a running cluster, whose nodes must have
cl-bench and its dependencies installed and the data at the same path.

Where results go (``results``):

- ``"shared"``: every task writes its run folder straight into the results folder, which must
  be the same path on every node (one machine, or a network filesystem). Incomplete cells of an
  earlier sweep are resumed.
- ``"return"``: every task runs in a private temporary folder and returns its files (all but
  ``checkpoints/``) to the driver, which writes them into the results folder. An incomplete
  cell starts afresh (its checkpoints are not where the task runs).

Ray is imported inside the functions only, so the rest of cl-bench works without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cl_bench.errors import ConfigError
from cl_bench.sweep.execute import (
    FAILED,
    CellResult,
    execute_cell,
    execute_cell_returning_files,
    install_returned_files,
)
from cl_bench.sweep.grid import Cell

RESULT_MODES = ("shared", "return")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray, an optional extra: pip install -e '.[ray]' "
                          "(or pip install 'ray[default]'); or use --backend local") from None
    return ray


def ray_cell(cell: Cell, out_root: str, results: str, threads: int) -> CellResult:
    """The body of one Ray task (module level, so Ray ships it by reference)."""
    if results == "return":
        return execute_cell_returning_files(cell, threads=threads)
    return execute_cell(cell, out_root, threads=threads)


def run_ray(cells: Sequence[Cell], out_root: str, address: str | None = None,
            results: str = "shared", threads: int = 1,
            echo: Callable[[str], None] | None = print) -> Iterator[tuple[Cell, CellResult]]:
    """Run ``cells`` as Ray tasks and yield ``(cell, result)`` as each one ends.

    Uses the Ray instance this process is connected to already (tests start one with
    ``ray.init(num_cpus=2)``); else connects to ``address`` or starts a local one, and shuts it
    down at the end.
    """
    if results not in RESULT_MODES:
        raise ConfigError(f"--ray-results {results!r}: choose {' or '.join(RESULT_MODES)}")
    if threads < 1:
        raise ConfigError(f"--threads {threads}: give 1 or more")
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"address": address}
        if address is None:
            options["include_dashboard"] = False
        try:
            ray.init(**options)
        except ConnectionError as exc:
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({exc}); "
                              "start one with `ray start --head` or omit --address to start "
                              "a local instance") from None
    elif address is not None and echo:
        echo(f"ray: this process is connected to a Ray instance already; --address {address} "
             "is not used")
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if echo:
            cpus = ray.cluster_resources().get("CPU", 0)
            echo(f"ray: cluster with {cpus:g} CPU(s) and {gpus:g} GPU(s); each cell asks for "
                 f"{threads} CPU(s)" + (" and 1 GPU (unless its device is cpu)" if gpus else ""))
        task = ray.remote(ray_cell)
        root = str(Path(out_root).resolve())
        pending = {}
        for cell in cells:
            options = task.options(num_cpus=threads, num_gpus=cell_gpus(cell, gpus),
                                   max_retries=1)
            pending[options.remote(cell, root, results, threads)] = cell
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                result = _result_of(ray, ref, cell)
                if result.files is not None:
                    install_returned_files(Path(root) / cell.experiment, result)
                yield cell, result
    finally:
        if started_here:
            ray.shutdown()


def cell_gpus(cell: Cell, cluster_gpus: float) -> int:
    """1 when the cluster has GPUs and the cell may use one (its device is not ``cpu``)."""
    return 1 if cluster_gpus > 0 and cell.config.get("device", "auto") != "cpu" else 0


def _result_of(ray: Any, ref: Any, cell: Cell) -> CellResult:
    """The task's result; a task that Ray could not run (node lost, worker killed) fails."""
    try:
        return ray.get(ref)
    except Exception as exc:
        return CellResult(cell.run_id, FAILED, f"ray task failed: {type(exc).__name__}: {exc}")
