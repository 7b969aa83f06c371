"""Rebuild a lost ``records.csv`` by evaluating the kept checkpoints again.

A run's records are the evaluations of the model after each step (the untrained model at step
-1, then after each task). The model after step i is ``checkpoints/<method>/seed<s>/stepNN.pt``,
so the rows of every step whose checkpoint is kept can be measured again: rebuild the detector
(seeded), restore the step's state (students, plugin state such as a routing strategy's keys) and
evaluate it on every task, exactly as the run did after training it. A step whose checkpoint is
gone (``performance.keep_checkpoints: last`` deletes all but the last, by design) cannot be
evaluated again; the cell then goes back to the last step it could rebuild and trains the later
steps again, which reproduces their records (every step re-seeds from (seed, step)). The
``independent`` strategy (one detector per task) is trained again from the start.
"""

from __future__ import annotations

from cl_bench.evaluation import evaluate_stream
from cl_bench.run.context import RunContext, make_records
from cl_bench.run.sequential import restore_step
from cl_bench.run.steps import build_strategy
from strategies.errors import CheckpointError


def rebuild_lost_records(ctx: RunContext, tasks) -> None:
    """``records.csv`` was missing at resume: write the rows of every completed step whose
    checkpoint is kept; every cell continues after the last step it could rebuild (said on the
    console and in the manifest)."""
    spec = ctx.cfg.strategy.spec()
    T = len(ctx.categories)
    trained = [T - 1] if spec.stream == "joint" else list(range(T))
    messages = []
    for key, cell in ctx.manifest.cells.items():
        last = cell.get("completed_step", -2)
        if last < -1:
            continue
        method, _, seed_text = key.rpartition("/seed")
        seed = int(seed_text)
        rebuilt, missing = -2, ""
        if spec.stream == "per_task":
            missing = "the independent strategy keeps no checkpoint of its per-task detectors"
        else:
            for step in [-1, *(s for s in trained if s <= last)]:
                path = ctx.checkpoint_path(method, seed, step)
                if step >= 0 and not path.is_file():
                    missing = _missing_reason(ctx, path)
                    break
                strategy = build_strategy(ctx, method, seed, progress=False)
                if step >= 0:
                    try:
                        restore_step(ctx, strategy, tasks, method, seed, step)
                    except CheckpointError:
                        missing = f"checkpoint {path} is truncated or unreadable"
                        break
                result = evaluate_stream(strategy, tasks.benchmark.test_stream, ctx, upto=step,
                                         progress=False)
                train_task = ("" if step < 0 else "joint" if spec.stream == "joint"
                              else ctx.categories[step])
                ctx.records.append(make_records(ctx, method, seed, step, train_task,
                                                result.per_task, result.pooled))
                rebuilt = step
        if rebuilt == last:
            messages.append(f"{method} seed {seed}: steps -1..{last} rebuilt from checkpoints")
            continue
        first = rebuilt + 1
        messages.append(f"{method} seed {seed}: steps -1..{rebuilt} rebuilt, steps "
                        f"{first}..{last} trained again ({missing})" if rebuilt >= -1 else
                        f"{method} seed {seed}: every step trained again ({missing})")
        cell["completed_step"] = rebuilt
        cell["status"] = "running"
        ctx.manifest.drop_steps_after(method, seed, rebuilt)
    message = ("records.csv was missing: rebuilt by evaluating the kept checkpoints again; "
               + "; ".join(messages or ["no step had completed"]))
    ctx.log(f"warning: {message}")
    ctx.manifest.warn(message)


def _missing_reason(ctx: RunContext, path) -> str:
    if ctx.cfg.performance.keep_checkpoints == "last":
        return (f"checkpoint {path.name} and the other earlier ones were deleted by design "
                "(performance.keep_checkpoints: last)")
    return f"checkpoint {path} is missing"
