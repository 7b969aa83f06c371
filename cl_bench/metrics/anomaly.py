"""Reference anomaly metrics: image and pixel AUROC/AP (scikit-learn), F1-max, exact AU-PRO.

These are the straightforward, readable definitions; :mod:`cl_bench.metrics.ranking` computes the
same pixel metrics from one ranking of the pixels, much faster, and is tested against them.

Undefined cases return NaN with an :class:`~cl_bench.metrics.inputs.UndefinedMetricWarning`
naming the task (``task=``): a test set without defective images, or without good ones (image
metrics), without defect pixels or without defect-free pixels (pixel metrics). Nothing is made up
and no AUROC below 0.5 is "flipped". Ties follow the definitions: a constant score gives AUROC 0.5,
AP = the positive rate, AU-PRO = 0.15 at the 0.3 limit (the curve jumps straight to (1, 1)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from cl_bench.metrics.inputs import (
    MetricInputError,
    maps_and_masks,
    scores_and_labels,
    undefined,
)

#: 8-connectivity within one image (the official MVTec AD script's 3x3 ones structure)
CONNECTIVITY_2D = np.ones((3, 3), dtype=int)
#: the same for a stack (N,H,W): 8-connected within each image, never across images
CONNECTIVITY_STACK = np.zeros((3, 3, 3), dtype=int)
CONNECTIVITY_STACK[1] = 1


def _two_classes(y: np.ndarray, metric: str, kind: str, task: str | None) -> bool:
    """True when ``y`` holds both classes; otherwise warn (naming the task) so the caller NaNs."""
    reason = undefined_reason(int(np.count_nonzero(y)), int(y.size), kind)
    if reason is not None:
        undefined(metric, reason, task)
        return False
    return True


def image_auroc(scores: Any, labels: Any, *, task: str | None = None) -> float:
    """Image-level area under the ROC curve, ``sklearn.metrics.roc_auc_score``.

    AUROC = P(s+ > s-) + 0.5 P(s+ = s-) for a random defective/good pair (Mann-Whitney U / (P N)).
    NaN with a warning when the test set lacks defective or good images.
    """
    s, y = scores_and_labels(scores, labels, task)
    if not _two_classes(y, "image AUROC", "images", task):
        return float("nan")
    return float(roc_auc_score(y, s))


def image_ap(scores: Any, labels: Any, *, task: str | None = None) -> float:
    """Image-level average precision, ``sklearn.metrics.average_precision_score``.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct thresholds (no interpolation).
    NaN with a warning when the test set lacks defective or good images.
    """
    s, y = scores_and_labels(scores, labels, task)
    if not _two_classes(y, "image AP", "images", task):
        return float("nan")
    return float(average_precision_score(y, s))


def _f1_max(s: np.ndarray, y: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(y, s)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator),
                   where=denominator > 0)
    return float(f1.max())


def image_f1_max(scores: Any, labels: Any, *, task: str | None = None) -> float:
    """Best F1 = max_t 2 P(t) R(t) / (P(t) + R(t)) over the distinct thresholds (image level)."""
    s, y = scores_and_labels(scores, labels, task)
    if not _two_classes(y, "image F1-max", "images", task):
        return float("nan")
    return _f1_max(s, y)


def pixel_auroc(maps: Any, masks: Any, *, task: str | None = None) -> float:
    """Pixel AUROC over all pixels of all test images of a task (``roc_auc_score``).

    maps (N,1,H,W) or (N,H,W), masks of the same shape, binary. NaN with a warning when the task
    has no defect pixel or no defect-free pixel.
    """
    m, g = maps_and_masks(maps, masks, task)
    if not _two_classes(g, "pixel AUROC", "pixels", task):
        return float("nan")
    return float(roc_auc_score(g.ravel(), m.ravel()))


def pixel_ap(maps: Any, masks: Any, *, task: str | None = None) -> float:
    """Pixel average precision over all test pixels of a task (``average_precision_score``)."""
    m, g = maps_and_masks(maps, masks, task)
    if not _two_classes(g, "pixel AP", "pixels", task):
        return float("nan")
    return float(average_precision_score(g.ravel(), m.ravel()))


def pixel_f1_max(maps: Any, masks: Any, *, task: str | None = None) -> float:
    """Best pixel F1 over all distinct thresholds (``precision_recall_curve``)."""
    m, g = maps_and_masks(maps, masks, task)
    if not _two_classes(g, "pixel F1-max", "pixels", task):
        return float("nan")
    return _f1_max(m.ravel(), g.ravel())


def label_regions(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Ground-truth connected components of a mask stack (N,H,W), 8-connected per image.

    Returns int32 labels (0 = defect-free, 1..K = region) numbered over the whole stack, and K.
    """
    labels, n_regions = ndimage.label(masks, structure=CONNECTIVITY_STACK)
    return labels.astype(np.int32, copy=False), int(n_regions)


def check_fpr_limit(fpr_limit: float) -> float:
    if not 0 < fpr_limit <= 1:
        raise MetricInputError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    return float(fpr_limit)


def pro_curve(maps: Any, masks: Any, *, task: str | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-region-overlap curve (FPR, PRO) at every distinct threshold, MVTec AD definition.

    Regions C_1..C_K: connected components (8-connectivity) of the masks over the whole test set.
    At threshold t (every distinct map value, high to low, ties merged):
    FPR(t) = |{defect-free pixels p: s(p) >= t}| / |defect-free pixels| (all images) and
    PRO(t) = (1/K) sum_k |{p in C_k: s(p) >= t}| / |C_k|. The curve starts at (0, 0) and ends at
    (1, 1); values are clipped to [0, 1] (Bergmann et al., IJCV 2021; official MVTec AD script).
    NaN arrays with a warning when there is no region or no defect-free pixel.
    """
    m, g = maps_and_masks(maps, masks, task)
    if not _two_classes(g, "AU-PRO", "pixels", task):
        nan = np.array([np.nan])
        return nan, nan
    regions, n_regions = label_regions(g)
    sizes = np.bincount(regions.ravel(), minlength=n_regions + 1)
    # Each defect-free pixel adds 1 to the FP count; each pixel of region k adds 1/|C_k| to PRO.
    fp_changes = (~g).ravel().astype(np.float64)
    pro_changes = np.where(regions.ravel() > 0, 1.0 / sizes[regions.ravel()], 0.0)
    scores = m.ravel()
    order = np.argsort(scores)[::-1]  # as the official script; ties are merged below
    sorted_scores = scores[order]
    fpr = np.cumsum(fp_changes[order]) / fp_changes.sum()
    pro = np.cumsum(pro_changes[order]) / n_regions
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    fpr = np.clip(fpr[last_of_tie], 0.0, 1.0)
    pro = np.clip(pro[last_of_tie], 0.0, 1.0)
    return np.concatenate(([0.0], fpr, [1.0])), np.concatenate(([0.0], pro, [1.0]))


def trapezoid_area(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under y(x) for x in [0, x_max], x non-decreasing.

    When x_max lies between two points, the last segment ends at x_max with y interpolated
    linearly (as the official MVTec AD ``trapezoid``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    correction = 0.0
    if x_max not in x:
        ins = int(np.searchsorted(x, x_max, side="right"))  # bisect_right
        if not 0 < ins < len(x):
            raise MetricInputError(f"x_max={x_max} lies outside the curve's range "
                                   f"[{x[0]}, {x[-1]}]")
        y_at = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_at + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) + correction)


def au_pro(maps: Any, masks: Any, fpr_limit: float = 0.3, *, task: str | None = None) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit``, exact MVTec AD definition.

    AU-PRO = (1 / fpr_limit) * integral_0^fpr_limit PRO d(FPR), trapezoidal over every distinct
    threshold of :func:`pro_curve`, with the last segment interpolated at the limit
    (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021). A perfect map gives 1,
    a map ranking every defect pixel below every defect-free pixel gives 0.
    NaN with a warning when the task has no defect region or no defect-free pixel.
    """
    limit = check_fpr_limit(fpr_limit)
    fpr, pro = pro_curve(maps, masks, task=task)
    if np.isnan(fpr).any():
        return float("nan")
    return trapezoid_area(fpr, pro, limit) / limit


def undefined_reason(n_pos: int, n_total: int, kind: str) -> str | None:
    """Why a two-class metric is undefined for ``n_pos`` positives among ``n_total``, or None."""
    if n_pos == 0:
        return f"no defective {kind} among {n_total}"
    if n_pos == n_total:
        return f"no good {kind}: all {n_total} are defective"
    return None


__all__ = [
    "au_pro",
    "check_fpr_limit",
    "image_ap",
    "image_auroc",
    "image_f1_max",
    "label_regions",
    "pixel_ap",
    "pixel_auroc",
    "pixel_f1_max",
    "pro_curve",
    "trapezoid_area",
    "undefined_reason",
]
