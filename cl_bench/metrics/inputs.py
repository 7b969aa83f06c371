"""Input checks shared by the metric functions: conversion, shapes, finite values, binary masks.

Every check raises :class:`MetricInputError` with a message that names the argument (and the task
when one is given), says what was wrong and how to fix it. Undefined metrics are not errors: they
return NaN after an :class:`UndefinedMetricWarning` (see :func:`undefined`).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from cl_bench.errors import DataError

if TYPE_CHECKING:
    import torch


class MetricInputError(DataError, ValueError):
    """Scores, labels, maps or masks given to a metric are malformed (shape, NaN, non-binary)."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on this input (e.g. no defective images) and was set to NaN."""


def where(task: str | None) -> str:
    """Message prefix naming the task, e.g. ``"task 'bottle': "``; empty without a task."""
    return f"task {task!r}: " if task else ""


def undefined(metric: str, reason: str, task: str | None) -> float:
    """Warn that ``metric`` is undefined (naming the task and the reason) and return NaN."""
    warnings.warn(f"{where(task)}{metric} is undefined ({reason}); reporting NaN",
                  UndefinedMetricWarning, stacklevel=3)
    return math.nan


def to_numpy(value: Any, name: str, task: str | None) -> np.ndarray:
    """A numpy view/copy of a numpy array, torch tensor or nested list.

    torch is looked up in ``sys.modules`` instead of imported: a tensor cannot exist before torch
    is imported, and the report (which checks numpy values only) then never loads torch.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list | tuple):
        return np.asarray(value)
    raise MetricInputError(f"{where(task)}{name} must be a numpy array or torch tensor, "
                           f"got {type(value).__name__}")


def _first_index(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def check_finite(values: np.ndarray, name: str, task: str | None) -> None:
    """Reject NaN and infinite values, naming how many there are and where the first is."""
    if values.dtype.kind == "b":
        return
    if values.dtype.kind not in "iuf":
        raise MetricInputError(f"{where(task)}{name} must be numeric, got dtype {values.dtype}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = ~np.isfinite(values)
        idx = _first_index(bad)
        raise MetricInputError(
            f"{where(task)}{name} contain {int(bad.sum())} non-finite value(s) (first: "
            f"{values[idx]} at index {idx}); the detector produced NaN/inf, check its output")


def check_binary(values: np.ndarray, name: str, task: str | None) -> np.ndarray:
    """``values`` as a bool array; every value must be 0 or 1 (False/True)."""
    if values.dtype.kind == "b":
        return values
    check_finite(values, name, task)
    bad = (values != 0) & (values != 1)
    if bad.any():
        idx = _first_index(bad)
        raise MetricInputError(
            f"{where(task)}{name} must be binary (0/1), but {int(bad.sum())} value(s) are not "
            f"(first: {values[idx]} at index {idx}); binarise them, e.g. mask > 0")
    return values != 0


def scores_and_labels(scores: Any, labels: Any, task: str | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Image scores (N,) and binary labels (N,) as numpy arrays, checked."""
    s = to_numpy(scores, "scores", task)
    y = to_numpy(labels, "labels", task)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1 or y.ndim != 1:
        raise MetricInputError(f"{where(task)}scores and labels must be 1-D (one value per "
                               f"image), got shapes {s.shape} and {y.shape}")
    if s.shape != y.shape:
        raise MetricInputError(f"{where(task)}scores and labels differ in length: "
                               f"{s.shape[0]} scores, {y.shape[0]} labels")
    if s.size == 0:
        raise MetricInputError(f"{where(task)}no images: scores and labels are empty")
    check_finite(s, "scores", task)
    return s, check_binary(y, "labels", task)


def as_image_stack(values: np.ndarray | torch.Tensor, name: str,
                   task: str | None) -> np.ndarray | torch.Tensor:
    """(N,H,W) from (N,1,H,W), (N,H,W) or a single (H,W) map; other shapes are rejected."""
    shape = tuple(values.shape)
    if len(shape) == 4 and shape[1] == 1:
        return values[:, 0]
    if len(shape) == 3:
        return values
    if len(shape) == 2:
        return values[None]
    raise MetricInputError(f"{where(task)}{name} must have shape (N,1,H,W), (N,H,W) or (H,W), "
                           f"got {shape}")


def maps_and_masks(maps: Any, masks: Any, task: str | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps (N,H,W) and bool masks (N,H,W) as numpy arrays, checked."""
    m = as_image_stack(to_numpy(maps, "maps", task), "maps", task)
    g = as_image_stack(to_numpy(masks, "masks", task), "masks", task)
    if m.shape != g.shape:
        raise MetricInputError(f"{where(task)}maps and masks differ in shape: {m.shape} vs "
                               f"{g.shape}; resize the maps to the mask size first")
    if m.size == 0:
        raise MetricInputError(f"{where(task)}no pixels: maps and masks are empty")
    check_finite(m, "maps", task)
    return m, check_binary(g, "masks", task)


def maps_and_masks_torch(maps: torch.Tensor, masks: torch.Tensor, task: str | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The torch twin of :func:`maps_and_masks`: (N,H,W) maps and bool masks on their device.

    torch is imported here, not at the top of the module, so the numpy checks load no torch.
    """
    import torch
    m = as_image_stack(maps, "maps", task)
    g = as_image_stack(masks.to(m.device), "masks", task)
    if m.shape != g.shape:
        raise MetricInputError(f"{where(task)}maps and masks differ in shape: "
                               f"{tuple(m.shape)} vs {tuple(g.shape)}")
    if m.numel() == 0:
        raise MetricInputError(f"{where(task)}no pixels: maps and masks are empty")
    if m.is_floating_point() and not bool(torch.isfinite(m).all()):
        check_finite(m.detach().cpu().numpy(), "maps", task)  # raises with the details
    if g.dtype != torch.bool:
        if not bool(((g == 0) | (g == 1)).all()):
            check_binary(g.detach().cpu().numpy(), "masks", task)  # raises with the details
        g = g != 0
    return m.detach(), g
