"""The parts of a step that the sequential and the per-task cell share: the strategy that trains a
detector, the checkpoint after a step, and the records, manifest entry and console line that end
it."""

from __future__ import annotations

import warnings

import torch
from avalanche.logging import InteractiveLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from cl_bench.evaluation import EvalResult, ScoreCollector
from cl_bench.manifest import StepEntry, peak_rss_mb
from cl_bench.metrics.avalanche import anomaly_metrics
from cl_bench.progress import ProgressPlugin
from cl_bench.run.context import RunContext, make_records
from cl_bench.seeding import seed_everything, step_seed
from cl_bench.training import optimizer_for, schedule_for
from strategies.continual.plugins import plugin_state
from strategies.detectors import build_detector
from strategies.training.avalanche_strategy import DistillationStrategy
from strategies.training.checkpoint import save_detector
from strategies.training.schedules import Schedule


def make_optimizer(ctx: RunContext, params, method: str) -> torch.optim.Optimizer:
    return optimizer_for(ctx.cfg.train.for_method(method), params)


def lr_schedule(ctx: RunContext, method: str) -> Schedule:
    return schedule_for(ctx.cfg.train.for_method(method))


def make_evaluator(ctx: RunContext, method: str, seed: int) -> EvaluationPlugin:
    """Avalanche's evaluator with the anomaly metrics and the loggers the config asks for."""
    loggers = []
    for name in ctx.cfg.eval.loggers:
        if name == "interactive":
            loggers.append(InteractiveLogger())
        elif name == "text":
            path = ctx.layout.text_log(method, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            loggers.append(TextLogger(path.open("a")))
        elif name == "tensorboard":
            from avalanche.logging import TensorboardLogger

            loggers.append(TensorboardLogger(ctx.layout.tensorboard(method, seed)))
    metrics = anomaly_metrics(metrics=ctx.cfg.eval.metrics, fpr_limit=ctx.cfg.eval.pro_fpr_limit)
    with warnings.catch_warnings():
        # the runner writes records itself; Avalanche loggers are optional (eval.loggers)
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(*metrics, loggers=loggers, strict_checks=False)


def build_strategy(ctx: RunContext, method: str, seed: int,
                   progress: bool | None = None) -> DistillationStrategy:
    """A freshly initialised detector (seeded) inside its Avalanche strategy."""
    cfg = ctx.cfg
    seed_everything(step_seed(seed, -1))
    detector = build_detector(method, backbone=cfg.model.backbone, weights=cfg.model.weights,
                              **cfg.model.options.get(method, {}))
    detector.to(ctx.device)
    perf = cfg.performance
    if perf.channels_last:
        detector.to(memory_format=torch.channels_last)
    if perf.teacher_cache:
        from strategies.teachers.teacher_cache import attach_teacher_cache

        attach_teacher_cache(detector, ctx.feature_store())
    plugins = cfg.strategy.spec().build_plugins(cfg.strategy.options_for(method), seed)
    plugins += [ScoreCollector(), ProgressPlugin(f"{method} seed {seed}", progress)]
    train = cfg.train.for_method(method)
    optimizer = None
    if detector.learns_without_gradients:
        ctx.log(f"[{method} seed {seed}] learns without gradients: one fit pass per task over "
                f"its training images; train.epochs ({train.epochs}), the optimizer and the "
                "learning-rate schedule are not used")
    else:
        optimizer = make_optimizer(ctx, detector.parameters(), method)
    return DistillationStrategy(
        model=detector,
        optimizer=optimizer,
        train_mb_size=train.batch_size,
        train_epochs=train.epochs,
        eval_mb_size=cfg.eval.batch_size,
        device=ctx.device,
        plugins=plugins,
        evaluator=make_evaluator(ctx, method, seed),
        reset_optimizer=train.reset_optimizer,
        autocast_bf16=perf.autocast_bf16,
        channels_last=perf.channels_last,
        lr_schedule=lr_schedule(ctx, method),
    )


def save_step(ctx: RunContext, strategy: DistillationStrategy, method: str, seed: int,
              step: int) -> None:
    extra = {
        "method": method, "seed": seed, "step": step, "run_id": ctx.run_id,
        "optimizer": (strategy.optimizer.state_dict()
                      if strategy.optimizer is not None else None),
        # the finished task's schedule (plain numbers); the next task starts a fresh one
        "lr_scheduler": (strategy.lr_scheduler.state_dict()
                         if strategy.lr_scheduler is not None else None),
        "plugins": [plugin_state(p) for p in strategy.plugins],
        "train_exp_counter": strategy.clock.train_exp_counter,
    }
    save_detector(strategy.detector, ctx.checkpoint_path(method, seed, step), extra=extra)


def _log_step(ctx: RunContext, method: str, seed: int, step: int, result: EvalResult,
              seconds: dict[str, float]) -> None:
    T = len(ctx.groups)
    name = "untrained" if step < 0 else f"task {step + 1}/{T} {ctx.task_names[step]!r}"
    seen = [j for j in result.per_task if step < 0 or j <= ctx.last_column(step)]
    parts = []
    for metric in ("image_auroc", "pixel_auroc", "au_pro"):
        values = [result.per_task[j].get(metric, float("nan")) for j in seen]
        if values:
            parts.append(f"{metric}={sum(values) / len(values):.3f}")
    pooled = result.pooled.get("image_auroc")
    if pooled is not None:
        parts.append(f"pooled_image_auroc={pooled:.3f}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
    ctx.log(f"[{method} seed {seed}] {name}: mean over seen tasks {' '.join(parts)} ({timing})")


def finish_step(ctx: RunContext, method: str, seed: int, step: int, train_task: str,
                 result: EvalResult, seconds: dict[str, float],
                 memory: dict[str, float] | None = None) -> None:
    """Records, manifest entry and console line of a finished step; ``memory``: the detector's
    :meth:`~strategies.detectors.AnomalyDetector.memory_stats` after the step."""
    ctx.records.append(make_records(ctx, method, seed, step, train_task, result.per_task,
                                    result.pooled))
    ctx.manifest.cell(ctx.cell_key(method, seed))["completed_step"] = step
    entry: StepEntry = {"method": method, "seed": seed, "step": step,
                             "train_task": train_task, **{f"{k}_s": v for k, v in seconds.items()},
                             "peak_rss_mb": round(peak_rss_mb(), 1), **(memory or {})}
    images = sum(len(scores) for scores in result.scores.values())
    if images and "eval" in seconds:  # inference cost, comparable across strategies
        entry["eval_images"] = images
        entry["eval_ms_per_image"] = round(1000 * seconds["eval"] / images, 3)
    if ctx.cfg.performance.teacher_cache:
        entry["teacher_cache"] = ctx.feature_store().stats()
    if ctx.device.type == "cuda":
        entry["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**20, 1)
    ctx.manifest.add_step(entry)
    _log_step(ctx, method, seed, step, result, seconds)
