"""One cell of a run: one method and one seed, dispatched by the strategy's stream kind.

The cell's entry in the manifest (status, the training and strategy options it resolved to) is
written here; the loop itself is :func:`~cl_bench.run.sequential.run_sequential_cell` or, for a
``per_task`` strategy (one detector per task), :func:`~cl_bench.run.per_task.run_independent_cell`.
"""

from __future__ import annotations

from cl_bench.run.context import RunContext
from cl_bench.run.per_task import run_independent_cell
from cl_bench.run.sequential import run_sequential_cell


def run_cell(ctx: RunContext, tasks, method: str, seed: int, progress: bool | None = None) -> None:
    cell = ctx.manifest.start_cell(ctx.cell_key(method, seed))
    if cell.get("status") == "complete":
        ctx.log(f"[{method} seed {seed}] already complete, skipped")
        return
    cell["status"] = "running"  # a failed cell that a resume continues
    # what this method trains with, shared settings and train.per_method resolved
    cell["train"] = ctx.cfg.train.for_method(method).model_dump(mode="json")
    options = ctx.cfg.strategy.options_for(method)  # strategy.per_method resolved
    if options is not None:
        cell["strategy_options"] = options.model_dump(mode="json")
    if ctx.cfg.strategy.spec().stream == "per_task":
        run_independent_cell(ctx, tasks, method, seed, progress)
    else:
        run_sequential_cell(ctx, tasks, method, seed, progress)
    cell["status"] = "complete"
    ctx.manifest.save()
