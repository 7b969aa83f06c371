"""The ``independent`` oracle: one detector per task, each task tested with its own detector.

Task identity is used at test time, so every record of such a run is labelled
``task_aware=True``. With tasks of several categories (``data.tasks``) detector i is trained on
the union of task i's categories and tested on each of them (its columns of R).

After step i, R[i, j] for j < i is the value measured when detector j was
trained (detector j never changes afterwards, so it is not evaluated again); tasks j > i have no
detector yet and are left out (NaN). The pooled metric ranks each task's images by the score of
that task's own detector. With score calibration (``strategy.independent.calibration``) each
detector's maps are on the common scale of :mod:`strategies.continual.calibration`; its raw scores
are kept next to them (``scores_uncalibrated``) for the paired pooled ``image_auroc_uncalibrated``.
"""

from __future__ import annotations

import csv
import time

import numpy as np

from cl_bench.evaluation import EvalResult, add_uncalibrated_metrics, evaluate_stream, save_maps
from cl_bench.io import atomic_write
from cl_bench.metrics import pooled_image_metrics
from cl_bench.run.context import RunContext
from cl_bench.run.steps import build_strategy, save_step
from cl_bench.run.steps import finish_step as _finish_step
from cl_bench.seeding import seed_everything, step_seed


def _scores_path(ctx: RunContext, method: str, seed: int, task: int):
    return ctx.layout.scores(method, seed, task)


def _save_task_scores(ctx, method, seed, task, result: EvalResult) -> None:
    def write(fh) -> None:
        arrays = {"scores": result.scores[task], "labels": result.labels[task]}
        if task in result.uncalibrated:
            arrays["scores_uncalibrated"] = result.uncalibrated[task]
        for key, value in result.maps.get(task, {}).items():
            arrays[f"maps_{key}"] = value
        np.savez(fh, **arrays)

    atomic_write(_scores_path(ctx, method, seed, task), write)


def _load_previous(ctx, method, seed, last: int) -> tuple[dict, EvalResult]:
    """Values of each column j measured at the step that trained its task (from records.csv)
    and the scores of the columns of tasks 0..last (from scores/)."""
    task_of = {j: k for k, cols in enumerate(ctx.groups) for j in cols}
    end = ctx.last_column(last)
    diagonal: dict[int, dict[str, float]] = {}
    with ctx.records.path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            step, j = int(row["step"]), int(row["eval_index"])
            if (row["method"] == method and int(row["seed"]) == seed and 0 <= j <= end
                    and step == task_of[j]):
                diagonal.setdefault(j, {})[row["metric"]] = float(row["value"])
    kept = EvalResult()
    for j in range(end + 1):
        with np.load(_scores_path(ctx, method, seed, j)) as data:
            kept.scores[j], kept.labels[j] = data["scores"], data["labels"]
            if "scores_uncalibrated" in data.files:
                kept.uncalibrated[j] = data["scores_uncalibrated"]
            maps = {k.removeprefix("maps_"): data[k] for k in data.files if k.startswith("maps_")}
            if maps:
                kept.maps[j] = maps
    return diagonal, kept


def run_independent_cell(ctx: RunContext, tasks, method: str, seed: int,
                         progress: bool | None) -> None:
    cell = ctx.manifest.cell(ctx.cell_key(method, seed))
    last = cell["completed_step"]
    keep = ctx.cfg.eval.saved_maps_per_task
    test_stream = tasks.benchmark.test_stream
    if last < -1:
        strategy = build_strategy(ctx, method, seed, progress)
        t0 = time.perf_counter()
        result = evaluate_stream(strategy, test_stream, ctx, upto=-1, progress=progress)
        _finish_step(ctx, method, seed, -1, "", result, {"eval": time.perf_counter() - t0})
    diagonal, kept = _load_previous(ctx, method, seed, max(last, -1))
    for i, experience in enumerate(tasks.benchmark.train_stream):
        if i <= last:
            continue
        strategy = build_strategy(ctx, method, seed, progress)  # a fresh detector for task i
        cell["trainable_parameters"] = strategy.detector.num_trainable_parameters()
        seed_everything(step_seed(seed, i))
        t0 = time.perf_counter()
        strategy.train(experience)
        t1 = time.perf_counter()
        columns = ctx.groups[i]
        own = evaluate_stream(strategy, [test_stream[j] for j in columns], ctx, upto=-1,
                              progress=progress, keep_maps=keep)
        t2 = time.perf_counter()
        for j in columns:
            _save_task_scores(ctx, method, seed, j, own)
            diagonal[j] = own.per_task[j]
            kept.scores[j], kept.labels[j] = own.scores[j], own.labels[j]
            if j in own.uncalibrated:
                kept.uncalibrated[j] = own.uncalibrated[j]
            if j in own.maps:
                kept.maps[j] = own.maps[j]
        save_step(ctx, strategy, method, seed, i)
        end = ctx.last_column(i)
        step_result = EvalResult(per_task={j: diagonal[j] for j in range(end + 1)},
                                 pooled=pooled_image_metrics(kept.scores, kept.labels, end))
        add_uncalibrated_metrics(step_result, kept.uncalibrated, kept.labels, end)
        if i == len(ctx.groups) - 1 and kept.maps:
            save_maps(ctx, method, seed, kept)
        _finish_step(ctx, method, seed, i, ctx.task_names[i], step_result,
                     {"train": t1 - t0, "eval": t2 - t1})
