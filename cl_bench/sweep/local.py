"""The local backend: cells one after another in this process, or in ``jobs`` worker processes.

Workers are started with the ``spawn`` method (a fresh interpreter: no CUDA context or thread
pool inherited from the driver) by :class:`concurrent.futures.ProcessPoolExecutor`, and each one
bounds torch to ``threads`` intra-op threads, so ``jobs x threads`` stays within the machine's
cores. Cells are handed out as workers free up; results come back in completion order.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from cl_bench.sweep.execute import FAILED, CellResult, execute_cell
from cl_bench.sweep.grid import Cell

#: environment variables that size the thread pools of the numerical libraries under torch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(jobs: int) -> int:
    """Torch threads per worker: the cores shared evenly among ``jobs`` workers (at least 1)."""
    return max(1, available_cores() // max(1, jobs))


def init_worker(threads: int) -> None:
    """Process-pool initializer: bound the worker's thread pools to ``threads``."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)
    # fails when already fixed by earlier parallel work; the intra-op bound still holds
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def run_local(cells: Sequence[Cell], out_root: str, jobs: int = 1, threads: int | None = None,
              echo: Callable[[str], None] | None = print) -> Iterator[tuple[Cell, CellResult]]:
    """Run ``cells`` and yield ``(cell, result)`` as each one ends.

    ``jobs == 1``: in this process, the cell's console output echoed (``echo``); ``threads``
    (when given) sets torch's thread count. ``jobs > 1``: worker processes with ``threads``
    torch threads each (default: the cores divided by ``jobs``); each cell's output goes to its
    log file only.
    """
    if jobs < 1:
        from cl_bench.errors import ConfigError

        raise ConfigError(f"--jobs {jobs}: give 1 (sequential) or more worker processes")
    if jobs == 1:
        for cell in cells:
            yield cell, execute_cell(cell, out_root, echo=echo, threads=threads)
        return
    threads = threads or default_threads(jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=init_worker,
                             initargs=(threads,)) as pool:
        pending: dict[Future, Cell] = {
            pool.submit(execute_cell, cell, out_root, None, threads): cell for cell in cells}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    cell = pending.pop(future)
                    yield cell, _result_of(future, cell)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _result_of(future: Future, cell: Cell) -> CellResult:
    """The cell's result; a crashed worker (killed, out of memory) becomes a failed cell."""
    try:
        return future.result()
    except Exception as exc:
        return CellResult(cell.run_id, FAILED, f"worker process failed: {type(exc).__name__}: "
                          f"{exc}")
