"""Sweeps: a grid over configuration keys (methods, strategies, seeds, task orders, options)
expanded into cells, each one ordinary run, on this machine or a Ray cluster.

Public API:
- :func:`load_sweep` (sweep YAML -> :class:`Sweep` with its validated :class:`Cell` list),
- :func:`plan` / :func:`describe_plan` (what a sweep would run, skip or resume),
- :func:`run_sweep` (run the cells with the ``local`` or ``ray`` backend, write ``sweep.json``,
  build the combined report),
- :func:`execute_cell` (one cell where it is scheduled; never raises).
"""

from __future__ import annotations

from cl_bench.sweep.driver import SweepOutcome, describe_plan, plan, run_sweep
from cl_bench.sweep.execute import CellResult, execute_cell
from cl_bench.sweep.grid import Cell, Sweep, cell_run_id, load_sweep, sweep_from_dict

__all__ = ["Cell", "CellResult", "Sweep", "SweepOutcome", "cell_run_id", "describe_plan",
           "execute_cell", "load_sweep", "plan", "run_sweep", "sweep_from_dict"]
