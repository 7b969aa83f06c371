"""Streaming evaluation of one task: batches of maps, masks, scores and labels in, metrics out.

Memory: the evaluator holds one task's maps at a time, as float32 maps + bool masks = 5 bytes
per pixel (a full MVTec AD category at 256x256, ~150 images, ~10M pixels: ~50 MB), on the
device they arrive on (or ``device=``). :meth:`TaskEvaluator.compute` ranks them once
(:mod:`cl_bench.metrics.ranking`) and briefly needs ~16 bytes per pixel more (int64 sort keys
and int32 region ids; ``cl-bench bench metrics`` measures the peak, see docs/performance.md).
Call :meth:`reset` (or make a new evaluator) before the next task.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cl_bench.metrics.anomaly import image_ap, image_auroc, image_f1_max
from cl_bench.metrics.inputs import (
    MetricInputError,
    maps_and_masks,
    maps_and_masks_torch,
    scores_and_labels,
    where,
)
from cl_bench.metrics.ranking import ranked_pixel_metrics

IMAGE_KEYS = ("image_auroc", "image_ap")
ALL_KEYS = ("image_auroc", "image_ap", "pixel_auroc", "pixel_ap", "au_pro")


class TaskEvaluator:
    """Accumulates one task's test batches; :meth:`compute` returns all its anomaly metrics.

    ``update(maps, masks, scores=None, labels=None)`` per batch: maps (B,1,H,W) or (B,H,W)
    (numpy or torch), masks of the same shape (binary), image scores (B,) and labels (B,) in
    {0, 1}. Without ``scores`` the image score is the maximum of each map (the DESIGN's image
    score); without ``labels`` an image is defective when its mask has a defect pixel. Given
    labels must agree with the masks (a good image has an empty mask).

    ``compute()`` -> ``{"image_auroc", "image_ap", "pixel_auroc", "pixel_ap", "au_pro"}``
    (+ ``image_f1_max``/``pixel_f1_max`` with ``f1_max=True``); all pixel metrics come from one
    ranking of the task's pixels. Undefined metrics are NaN with a warning naming ``task``.
    ``pixel=False`` keeps no maps and computes the image metrics only.
    """

    def __init__(self, *, task: str | None = None, fpr_limit: float = 0.3,
                 f1_max: bool = False, pixel: bool = True,
                 device: str | torch.device | None = None) -> None:
        self.task = task
        self.fpr_limit = fpr_limit
        self.f1_max = f1_max
        self.pixel = pixel
        self.device = torch.device(device) if device is not None else None
        self.reset()

    def reset(self, task: str | None = None) -> None:
        """Forget every batch (and optionally rename the task for the next one)."""
        if task is not None:
            self.task = task
        self._maps: list[np.ndarray | torch.Tensor] = []
        self._masks: list[np.ndarray | torch.Tensor] = []
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._scores_given: bool | None = None
        self._image_shape: tuple[int, int] | None = None
        self._store: torch.device | None = None

    # -------------------------------------------------------------------------------- update
    @property
    def n_images(self) -> int:
        return sum(len(s) for s in self._scores)

    @property
    def n_pixels(self) -> int:
        return sum(int(np.prod(tuple(m.shape))) for m in self._maps)

    @property
    def state_nbytes(self) -> int:
        """Bytes held for the maps and masks (float32 maps + bool masks: 5 per pixel)."""
        total = 0
        for part in (*self._maps, *self._masks):
            total += part.nbytes if isinstance(part, np.ndarray) else (
                part.numel() * part.element_size())
        return total

    def _store_device(self, maps: Any) -> torch.device:
        if self._store is None:
            self._store = self.device or (maps.device if isinstance(maps, torch.Tensor)
                                          else torch.device("cpu"))
        return self._store

    def update(self, maps: Any, masks: Any, scores: Any = None, labels: Any = None) -> None:
        """Add one batch (see the class docstring for the shapes)."""
        store = self._store_device(maps)
        if store.type == "cpu":
            m, g = maps_and_masks(maps, masks, self.task)
            # copies: the caller may reuse its buffers for the next batch
            m = np.array(m, dtype=np.float64 if m.dtype == np.float64 else np.float32)
            g = np.array(g, dtype=bool)
            per_map_max = m.reshape(len(m), -1).max(axis=1)
            has_defect = g.reshape(len(g), -1).any(axis=1)
        else:
            m, g = maps_and_masks_torch(torch.as_tensor(maps).to(store),
                                        torch.as_tensor(masks), self.task)
            dtype = torch.float64 if m.dtype == torch.float64 else torch.float32
            m = m.to(dtype, copy=True).contiguous()
            g = g.clone()
            per_map_max = m.reshape(len(m), -1).amax(dim=1).cpu().numpy()
            has_defect = g.reshape(len(g), -1).any(dim=1).cpu().numpy()
        shape = tuple(m.shape[1:])
        if self._image_shape is not None and shape != self._image_shape:
            raise MetricInputError(f"{where(self.task)}maps of size {shape} after maps of size "
                                   f"{self._image_shape}; all maps of a task must share one size")
        self._image_shape = shape
        self._add_image_level(per_map_max, has_defect, scores, labels)
        if self.pixel:
            self._maps.append(m)
            self._masks.append(g)

    def _add_image_level(self, per_map_max: np.ndarray, has_defect: np.ndarray,
                         scores: Any, labels: Any) -> None:
        given = scores is not None
        if self._scores_given is not None and given != self._scores_given:
            raise MetricInputError(f"{where(self.task)}some batches came with image scores and "
                                   "some without; pass scores for every batch or for none")
        self._scores_given = given
        s = per_map_max if scores is None else scores
        y = has_defect.astype(np.int8) if labels is None else labels
        s, y = scores_and_labels(s, y, self.task)
        if len(s) != len(has_defect):
            raise MetricInputError(f"{where(self.task)}{len(s)} image scores/labels for "
                                   f"{len(has_defect)} maps in one batch")
        contradiction = has_defect & ~y
        if contradiction.any():
            i = int(np.argmax(contradiction))
            raise MetricInputError(
                f"{where(self.task)}image {self.n_images + i} has label 0 (good) but its mask "
                "marks defect pixels; good images must have empty masks")
        self._scores.append(np.asarray(s))
        self._labels.append(y)

    # -------------------------------------------------------------------------------- compute
    def compute(self) -> dict[str, float]:
        """All metrics of the accumulated task (keys: see the class docstring)."""
        if not self._scores:
            raise MetricInputError(f"{where(self.task)}nothing to evaluate: update() was never "
                                   "called since the last reset()")
        scores = np.concatenate(self._scores)
        labels = np.concatenate(self._labels)
        out = {"image_auroc": image_auroc(scores, labels, task=self.task),
               "image_ap": image_ap(scores, labels, task=self.task)}
        if self.f1_max:
            out["image_f1_max"] = image_f1_max(scores, labels, task=self.task)
        if self.pixel:
            out.update(ranked_pixel_metrics(self._maps, self._masks, fpr_limit=self.fpr_limit,
                                            f1_max=self.f1_max, task=self.task))
        return out


#: the PLAN's other name for the same thing
PixelMetricAccumulator = TaskEvaluator

__all__ = ["ALL_KEYS", "IMAGE_KEYS", "PixelMetricAccumulator", "TaskEvaluator"]
