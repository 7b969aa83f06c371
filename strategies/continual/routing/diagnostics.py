"""Misrouting laid bare: what the task router did with each test image, and what it cost.

Kept per evaluation (one pass over the test stream after a step) by
:class:`RoutingDiagnostics`, fed batch by batch by the routing plugin:

- the **confusion matrix** ``C[j, e]`` = number of test images of test column ``j`` (a
  category; with one category per task, task j) routed to expert ``e`` (rows: every evaluated
  column, seen or not; columns: the experts so far, one per task), so row ``j`` sums to column
  j's test-set size and ``C[j, t(j)] / sum_e C[j, e]`` is its task-ID accuracy, ``t(j)`` the
  task that holds column j;
- the **distance margin** of each image, ``m(x) = d_(2)(x) - d_(1)(x)`` (second-smallest minus
  smallest task distance, a task's distance being that of its nearest key,
  :meth:`strategies.continual.routing.router.TaskRouter.task_distances`) and its
  scale-free form ``r(x) = m(x) / d_(2)(x)`` in [0, 1] (0: a tie between two keys, 1: the image
  sits on its key): how close to failing the router is. Summaries per seen task: mean and
  minimum of ``m`` and the share of images with ``r < LOW_MARGIN`` (undefined with one expert);
- **metrics of correctly routed and misrouted images apart**, per seen task: image AUROC
  (image scores against labels) and pixel AUROC (map values against mask pixels) over each
  group, as GCR reports pixel AP per routing outcome. NaN where the group is empty or has one
  class only (AUROC is undefined there; never a silent 0.5).

AUROC: ``sklearn.metrics.roc_auc_score`` (the rank statistic P(s_anomalous > s_normal)).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: scale-free margin ``r = (d_2 - d_1) / d_2`` below which an image counts as nearly misrouted
LOW_MARGIN = 0.05

#: per seen task metric names written by the routing plugin (beside ROUTING_METRICS)
DIAGNOSTIC_METRICS = (
    "image_auroc_routed_right", "image_auroc_misrouted",
    "pixel_auroc_routed_right", "pixel_auroc_misrouted",
    "routing_margin_mean", "routing_margin_min", "routing_margin_low_frac",
)


def distance_margins(distances: Tensor) -> tuple[Tensor, Tensor]:
    """``(m, r)`` of each row of a ``(B, tasks)`` distance matrix (module docstring); NaN with
    fewer than two tasks."""
    if distances.shape[1] < 2:
        nan = torch.full((distances.shape[0],), math.nan)
        return nan, nan.clone()
    two = distances.float().topk(2, dim=1, largest=False).values
    margin = two[:, 1] - two[:, 0]
    ratio = margin / two[:, 1].clamp_min(torch.finfo(torch.float32).tiny)
    return margin, ratio


def auroc_or_nan(labels: np.ndarray, scores: np.ndarray) -> float:
    """``roc_auc_score``, or NaN when ``labels`` are empty or of one class."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).ravel()
    if labels.size == 0 or np.unique(labels).size < 2:
        return math.nan
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64).ravel()))


class RoutingDiagnostics:
    """Per-image routing outcomes of one evaluation (module docstring): ``add`` a batch of one
    true task, then read :meth:`confusion` and :meth:`task_metrics`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._task_of: dict[int, int] = {}  # test column -> the task that holds it
        self._routed: dict[int, list[np.ndarray]] = {}
        self._margin: dict[int, list[np.ndarray]] = {}
        self._ratio: dict[int, list[np.ndarray]] = {}
        self._scores: dict[int, list[np.ndarray]] = {}
        self._labels: dict[int, list[np.ndarray]] = {}
        self._maps: dict[int, list[np.ndarray]] = {}
        self._masks: dict[int, list[np.ndarray]] = {}

    def add_routing(self, column: int, task: int, routed: Tensor, distances: Tensor) -> None:
        """The routed expert of each image of a batch of test column ``column`` (held by true
        task ``task``), and its ``(B, tasks)`` distances."""
        margin, ratio = distance_margins(distances.cpu())
        self._task_of[column] = task
        self._routed.setdefault(column, []).append(routed.cpu().numpy().astype(np.int64))
        self._margin.setdefault(column, []).append(margin.numpy())
        self._ratio.setdefault(column, []).append(ratio.numpy())

    def add_outputs(self, column: int, scores: Tensor, labels: Tensor, maps: Tensor,
                    masks: Tensor) -> None:
        """The same batch's image scores, labels, anomaly maps and masks (after scoring)."""
        self._scores.setdefault(column, []).append(scores.detach().float().cpu().numpy())
        self._labels.setdefault(column, []).append(
            labels.detach().cpu().numpy().astype(np.int64))
        self._maps.setdefault(column, []).append(maps.detach().float().cpu().numpy())
        self._masks.setdefault(column, []).append(masks.detach().cpu().numpy() > 0.5)

    @property
    def n_rows(self) -> int:
        """1 + the largest test column seen in this evaluation (0 when none)."""
        return 1 + max(self._routed, default=-1)

    def confusion(self, n_rows: int, n_experts: int) -> np.ndarray:
        """``(n_rows, n_experts)`` int64 counts ``C[j, e]`` of the last evaluation."""
        matrix = np.zeros((n_rows, n_experts), dtype=np.int64)
        for column, parts in self._routed.items():
            np.add.at(matrix[column], np.concatenate(parts), 1)
        return matrix

    def task_metrics(self, n_experts: int) -> dict[int, dict[str, float]]:
        """Per test column whose task has an expert (``t(j) < n_experts``) the
        :data:`DIAGNOSTIC_METRICS`."""
        out: dict[int, dict[str, float]] = {}
        for column, parts in self._routed.items():
            task = self._task_of[column]
            if task >= n_experts:
                continue
            right = np.concatenate(parts) == task
            margin = np.concatenate(self._margin[column])
            ratio = np.concatenate(self._ratio[column])
            values: dict[str, float] = {}
            if n_experts >= 2:
                values.update(routing_margin_mean=float(margin.mean()),
                              routing_margin_min=float(margin.min()),
                              routing_margin_low_frac=float((ratio < LOW_MARGIN).mean()))
            else:
                values.update(routing_margin_mean=math.nan, routing_margin_min=math.nan,
                              routing_margin_low_frac=math.nan)
            if column in self._scores:
                scores = np.concatenate(self._scores[column])
                labels = np.concatenate(self._labels[column])
                maps = np.concatenate(self._maps[column])
                masks = np.concatenate(self._masks[column])
                for name, group in (("routed_right", right), ("misrouted", ~right)):
                    values[f"image_auroc_{name}"] = auroc_or_nan(labels[group], scores[group])
                    values[f"pixel_auroc_{name}"] = auroc_or_nan(masks[group], maps[group])
            out[column] = values
        return out
