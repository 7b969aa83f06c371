"""Evaluation of a strategy's model on every task of the test stream.

``strategy.eval(test_stream)`` runs Avalanche's evaluation loop; the anomaly metric plugins of
:mod:`cl_bench.metrics.avalanche` compute each task's image AUROC/AP, pixel AUROC/AP and AU-PRO
(one pixel ranking per task) and emit them to Avalanche's loggers. :class:`ScoreCollector` keeps
what the runner needs besides: each task's image scores and labels (for the pooled,
task-agnostic metric) and, after the final task, the maps of a few test images for the report's
qualitative figures. With score calibration (:mod:`strategies.continual.calibration`) it also keeps
the raw, uncalibrated image scores, from which :func:`add_uncalibrated_metrics` adds the paired
"before calibration" image AUROC (``image_auroc_uncalibrated``, per task and pooled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.io import atomic_write
from cl_bench.metrics import pooled_image_metrics


@dataclass
class EvalResult:
    per_task: dict[int, dict[str, float]] = field(default_factory=dict)
    pooled: dict[str, float] = field(default_factory=dict)
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    labels: dict[int, np.ndarray] = field(default_factory=dict)
    maps: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    #: the raw image scores where a calibrating scorer gave them (else empty)
    uncalibrated: dict[int, np.ndarray] = field(default_factory=dict)


def _spread_indices(labels: np.ndarray, k: int) -> np.ndarray:
    """``k`` test images of a task, half defective and half good where possible, spread out."""
    defective, good = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_def = min(len(defective), max(k - min(len(good), k // 2), 0))
    n_good = min(len(good), k - n_def)

    def spread(idx: np.ndarray, n: int) -> np.ndarray:
        return idx[np.linspace(0, len(idx) - 1, n).round().astype(int)] if n else idx[:0]

    return np.sort(np.concatenate([spread(defective, n_def), spread(good, n_good)]))


class ScoreCollector(SupervisedPlugin):
    """Keeps image scores and labels per evaluated task, and the first maps when asked to."""

    def __init__(self) -> None:
        super().__init__()
        self.keep_maps = 0
        self.reset()

    def reset(self) -> None:
        self._scores: dict[int, list[np.ndarray]] = {}
        self._labels: dict[int, list[np.ndarray]] = {}
        self._uncalibrated: dict[int, list[np.ndarray]] = {}
        self._maps: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        j = strategy.experience.current_experience
        self._scores.setdefault(j, []).append(strategy.mb_image_score.detach().cpu().numpy())
        self._labels.setdefault(j, []).append(strategy.mb_y.detach().cpu().numpy())
        raw = getattr(strategy, "mb_image_score_uncalibrated", None)
        if raw is not None:
            self._uncalibrated.setdefault(j, []).append(raw.detach().cpu().numpy())
        if self.keep_maps:
            self._maps.setdefault(j, []).append((
                strategy.mb_x.detach().cpu().numpy(),
                strategy.mb_mask.detach().cpu().numpy()[:, 0],
                strategy.mb_anomaly_map.detach().cpu().numpy()[:, 0],
            ))

    def result(self) -> EvalResult:
        res = EvalResult()
        for j in self._scores:
            res.scores[j] = np.concatenate(self._scores[j])
            res.labels[j] = np.concatenate(self._labels[j]).astype(int)
            if j in self._uncalibrated:
                res.uncalibrated[j] = np.concatenate(self._uncalibrated[j])
            if self.keep_maps and j in self._maps:
                images, masks, maps = (np.concatenate(parts) for parts in zip(*self._maps[j],
                                                                              strict=True))
                idx = _spread_indices(res.labels[j], self.keep_maps)
                res.maps[j] = {"images": images[idx], "masks": masks[idx], "maps": maps[idx],
                               "labels": res.labels[j][idx]}
        return res


def evaluate_stream(strategy, test_stream, ctx, upto: int, progress: bool | None = None,
                    keep_maps: int = 0) -> EvalResult:
    """Evaluate on every task; read the per-task metrics back from the metric plugins."""
    from cl_bench.metrics.avalanche import read_experience_metrics

    collector = next(p for p in strategy.plugins if isinstance(p, ScoreCollector))
    collector.reset()
    collector.keep_maps = keep_maps
    strategy.evaluator.reset_last_metrics()
    strategy.eval(test_stream)
    result = collector.result()
    last = strategy.evaluator.get_last_metrics()
    for j in result.scores:
        result.per_task[j] = read_experience_metrics(last, j)
    if upto >= 0:
        result.pooled = pooled_image_metrics(result.scores, result.labels, upto)
    add_uncalibrated_metrics(result, result.uncalibrated, result.labels, upto)
    add_plugin_metrics(strategy, result)
    collector.keep_maps = 0
    return result


def add_uncalibrated_metrics(result: EvalResult, uncalibrated: dict[int, np.ndarray],
                             labels: dict[int, np.ndarray], upto: int) -> None:
    """``image_auroc_uncalibrated`` of the raw scores: per task in ``uncalibrated`` (those in
    ``result.per_task``) and, for ``upto >= 0``, pooled over the tasks 0..upto; nothing when no
    task has raw scores (no calibration). A task of the pooled range without raw scores would
    make the pooled value a different population, so it is an error."""
    from cl_bench.metrics import image_auroc

    if not uncalibrated:
        return
    for j in result.per_task:
        if j in uncalibrated:
            result.per_task[j]["image_auroc_uncalibrated"] = image_auroc(
                uncalibrated[j], labels[j], task=str(j))
    if upto < 0:
        return
    missing = [j for j in labels if j <= upto and j not in uncalibrated]
    if missing:
        raise ValueError(f"uncalibrated scores missing for tasks {missing}: the pooled "
                         "uncalibrated AUROC needs every task's raw scores")
    pooled = pooled_image_metrics(uncalibrated, labels, upto)
    if pooled:
        result.pooled["image_auroc_uncalibrated"] = pooled["image_auroc"]


def add_plugin_metrics(strategy, result: EvalResult) -> None:
    """Merge what plugins measured in this evaluation into ``result``: a plugin with
    ``eval_metrics() -> (per_task, pooled)`` (e.g. routing's task-identification accuracy and
    memory, :data:`strategies.continual.routing.plugin.ROUTING_METRICS`) adds metrics to the tasks'
    and to the pooled rows; they are written to records.csv like the anomaly metrics."""
    for plugin in strategy.plugins:
        measure = getattr(plugin, "eval_metrics", None)
        if not callable(measure):
            continue
        per_task, pooled = measure()
        for j, values in per_task.items():
            result.per_task.setdefault(j, {}).update(values)
        result.pooled.update(pooled)


def save_maps(ctx, method: str, seed: int, result: EvalResult) -> None:
    """``maps/<method>__<strategy>__seed<seed>.npz`` with uint8 images, masks, float32 maps."""
    from cl_bench.data import denormalize

    images, masks, maps, tasks, labels = [], [], [], [], []
    for j, item in sorted(result.maps.items()):
        rgb = denormalize(torch.from_numpy(item["images"]))
        images.append((rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        masks.append(item["masks"].astype(np.uint8))
        maps.append(item["maps"].astype(np.float32))
        tasks += [ctx.categories[j]] * len(item["labels"])
        labels.append(item["labels"])
    path = ctx.layout.map_file(method, ctx.cfg.strategy.name, seed)

    def write(fh) -> None:
        np.savez_compressed(fh, images=np.concatenate(images), masks=np.concatenate(masks),
                            maps=np.concatenate(maps), tasks=np.array(tasks),
                            labels=np.concatenate(labels))

    atomic_write(path, write)
