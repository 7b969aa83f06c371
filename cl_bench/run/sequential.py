"""One strategy trained task after task: the sequential, joint and cumulative streams of one
method and one seed (or the remainder of them on resume), tested on every task after each step."""

from __future__ import annotations

import time

from cl_bench.evaluation import evaluate_stream, save_maps
from cl_bench.io import atomic_write_text
from cl_bench.run.context import RunContext
from cl_bench.run.steps import build_strategy, save_step
from cl_bench.run.steps import finish_step as _finish_step
from cl_bench.seeding import seed_everything, step_seed
from strategies.continual.plugins import load_plugin_state, restore_from_stream
from strategies.training.avalanche_strategy import DistillationStrategy
from strategies.training.checkpoint import load_detector_state


def restore_step(ctx: RunContext, strategy: DistillationStrategy, tasks, method: str, seed: int,
                 step: int) -> None:
    """Load the state after ``step``: students, optimizer, plugin state, clock, replay buffer."""
    extra = load_detector_state(strategy.detector, ctx.checkpoint_path(method, seed, step))
    strategy.pending_optimizer_state = extra["optimizer"]
    done = list(tasks.benchmark.train_stream)[: step + 1]
    for plugin, state in zip(strategy.plugins, extra["plugins"], strict=False):
        load_plugin_state(plugin, state, strategy)
        restore_from_stream(plugin, done)
    strategy.clock.train_exp_counter = int(extra["train_exp_counter"])


def _memory_stats(strategy) -> dict:
    """The detector's memory after a step, with what its plugins hold (a plugin with
    ``memory_stats()``, e.g. routing's experts: their total next to the per-task figure)."""
    stats = dict(strategy.detector.memory_stats())
    for plugin in strategy.plugins:
        measure = getattr(plugin, "memory_stats", None)
        if callable(measure):
            stats.update(measure())
    return stats


def _save_routing_confusion(ctx: RunContext, strategy, method: str, seed: int,
                            step: int) -> None:
    """``routing/<method>__seed<s>__confusion_step<k>.csv`` (atomic): rows the evaluated tasks,
    columns the experts, counts of test images, from a plugin with ``confusion_matrix()``."""
    for plugin in strategy.plugins:
        measure = getattr(plugin, "confusion_matrix", None)
        matrix = measure() if callable(measure) else None
        if matrix is None:
            continue
        import pandas as pd

        rows, experts = list(ctx.categories), list(ctx.task_names)  # test columns; tasks
        frame = pd.DataFrame(matrix, index=pd.Index(rows[: matrix.shape[0]], name="true_task"),
                             columns=experts[: matrix.shape[1]])
        atomic_write_text(ctx.layout.routing_confusion(method, seed, step), frame.to_csv())


def run_sequential_cell(ctx: RunContext, tasks, method: str, seed: int,
                         progress: bool | None) -> None:
    cfg = ctx.cfg
    cell = ctx.manifest.cell(ctx.cell_key(method, seed))
    strategy = build_strategy(ctx, method, seed, progress)
    cell["trainable_parameters"] = strategy.detector.num_trainable_parameters()
    cell["learns_without_gradients"] = strategy.detector.learns_without_gradients
    test_stream = tasks.benchmark.test_stream
    T = len(ctx.groups)
    if cfg.strategy.spec().stream == "joint":  # one step on all tasks, recorded as step T-1
        steps = [(T - 1, "joint", tasks.benchmark.train_stream[0])]
    else:  # sequential; cumulative: experience i holds tasks 0..i, recorded with task i
        steps = [(i, ctx.task_names[i], exp)
                 for i, exp in enumerate(tasks.benchmark.train_stream)]
    last = cell["completed_step"]
    if last >= 0:
        restore_step(ctx, strategy, tasks, method, seed, last)
        ctx.log(f"[{method} seed {seed}] resumed after step {last}")
    if last < -1:
        t0 = time.perf_counter()
        result = evaluate_stream(strategy, test_stream, ctx, upto=-1, progress=progress)
        _finish_step(ctx, method, seed, -1, "", result, {"eval": time.perf_counter() - t0})
    for step, train_task, experience in steps:
        if step <= last:
            continue
        seed_everything(step_seed(seed, step))
        t0 = time.perf_counter()
        strategy.train(experience)
        t1 = time.perf_counter()
        is_final = step == steps[-1][0]
        result = evaluate_stream(strategy, test_stream, ctx, upto=ctx.last_column(step),
                                 progress=progress,
                                 keep_maps=cfg.eval.saved_maps_per_task if is_final else 0)
        t2 = time.perf_counter()
        save_step(ctx, strategy, method, seed, step)
        _save_routing_confusion(ctx, strategy, method, seed, step)
        if is_final and result.maps:
            save_maps(ctx, method, seed, result)
        _finish_step(ctx, method, seed, step, train_task, result,
                     {"train": t1 - t0, "eval": t2 - t1}, _memory_stats(strategy))
        if cfg.performance.keep_checkpoints == "last":
            drop_checkpoints_before(ctx, method, seed, step)


def drop_checkpoints_before(ctx: RunContext, method: str, seed: int, step: int) -> None:
    """Delete the checkpoints of ``method`` x ``seed`` older than ``step`` (``keep_checkpoints:
    last``); called only after ``step`` is recorded, so a kill in between leaves a resumable
    cell."""
    for earlier in range(step):
        ctx.checkpoint_path(method, seed, earlier).unlink(missing_ok=True)
