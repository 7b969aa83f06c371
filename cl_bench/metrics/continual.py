"""Continual-learning metrics from a result matrix R (docs/metrics.md).

R is a float array (T, T): row i = evaluation after training task i, column j = task j, NaN where
not evaluated. ``baseline`` (T,) is the untrained model's row (b_j = R[-1, j]). All tasks are
0-indexed, so the final row is R[T-1].

NaN handling: where a formula averages over tasks, NaN terms are left out of the mean (nanmean,
the divisor counts the defined terms only); where nothing is defined (e.g. T = 1 for
forgetting, BWT and FWT, or a column never evaluated) the result is NaN. No warnings are raised
for NaN entries; they are an expected part of a partially evaluated R.

Retention (cl-bench's chance-corrected definition, :func:`retention_ratio`)::

    rho = sum_{j<T-1} (R[T-1, j] - c) / sum_{j<T-1} (R[j, j] - c),  NaN when the mean of
          (R[j, j] - c) over those tasks is below RETENTION_MARGIN = 0.05

with c the metric's chance level (:func:`chance_level`). Like FM and BWT it runs over j < T-1:
the last task is evaluated right after it is learnt, so it has nothing to retain yet (its
rho_{T-1} = 1 by construction would only pull every method towards 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cl_bench.metrics.anomaly import image_ap, image_auroc
from cl_bench.metrics.inputs import MetricInputError, UndefinedMetricWarning

#: AUROC of a random ranking; retention is measured above it
CHANCE = 0.5


def _matrix(R: Any) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise MetricInputError(f"result matrix R must be square (T, T) with T >= 1, got shape "
                               f"{R.shape}; rows = after training task i, columns = task j")
    if np.isinf(R).any():
        raise MetricInputError("result matrix R contains infinite values; use NaN for "
                               "entries that were not evaluated")
    return R


def _vector(v: Any, T: int, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(T, float(v))
    if v.shape != (T,):
        raise MetricInputError(f"{name} must have one value per task, shape ({T},), "
                               f"got {v.shape}")
    return v


def _nanmean(values: np.ndarray) -> float:
    """Mean of the defined (non-NaN) values; NaN, silently, when there are none."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        return float("nan")
    return float(np.nanmean(values))


def final_average(R: Any) -> float:
    """Final average ACC = (1/T) sum_j R[T-1, j] (e.g. Lopez-Paz & Ranzato, NeurIPS 2017)."""
    R = _matrix(R)
    return _nanmean(R[-1])


def lower_triangle_average(R: Any) -> float:
    """Average over the lower triangle, sum_{i >= j} R[i, j] / (T (T+1) / 2).

    Díaz-Rodríguez et al., "Don't forget, there is more than forgetting", NeurIPS-W 2018 ("A");
    every task evaluated after every step from the one it was learnt on.
    """
    R = _matrix(R)
    return _nanmean(R[np.tril_indices(R.shape[0])])


def forgetting(R: Any) -> np.ndarray:
    """Per-task forgetting f_j = max_{j <= l < T-1} R[l, j] - R[T-1, j] for j < T-1.

    Chaudhry et al., "Riemannian Walk for Incremental Learning", ECCV 2018, with the maximum
    restricted to l >= j (before task j is learnt its score is zero-shot transfer, not
    knowledge that can be forgotten). Returns (T,) with NaN for the last task (nothing after it)
    and where the needed entries are NaN.
    """
    R = _matrix(R)
    T = R.shape[0]
    f = np.full(T, np.nan)
    for j in range(T - 1):
        earlier = R[j:T - 1, j]
        if not np.isnan(earlier).all():
            f[j] = np.nanmax(earlier) - R[T - 1, j]
    return f


def forgetting_measure(R: Any) -> float:
    """FM = (1/(T-1)) sum_{j < T-1} f_j (Chaudhry et al., ECCV 2018); NaN for T = 1."""
    return _nanmean(forgetting(R)[:-1])


def backward_transfer(R: Any) -> float:
    """BWT = (1/(T-1)) sum_{j < T-1} (R[T-1, j] - R[j, j]).

    Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017;
    negative values mean forgetting. NaN for T = 1.
    """
    R = _matrix(R)
    T = R.shape[0]
    j = np.arange(T - 1)
    return _nanmean(R[T - 1, j] - R[j, j])


def forward_transfer(R: Any, baseline: Any) -> float:
    """FWT = (1/(T-1)) sum_{j >= 1} (R[j-1, j] - b_j), b = the untrained model's row.

    Lopez-Paz & Ranzato, NeurIPS 2017: how much training on tasks < j helps task j before it is
    learnt, against the untrained (ImageNet-feature) model. NaN for T = 1.
    """
    R = _matrix(R)
    T = R.shape[0]
    b = _vector(baseline, T, "baseline")
    j = np.arange(1, T)
    return _nanmean(R[j - 1, j] - b[j])


#: retention is undefined where the gain above chance, R[j, j] - c, is below this margin (in the
#: metric's own units: 0.05 AUROC points, 0.05 AU-PRO points)
RETENTION_MARGIN = 0.05
#: float rounding allowed at the margin (R[j, j] = 0.55 with c = 0.5 is exactly at the margin)
_MARGIN_TOLERANCE = 1e-9


def retention(R: Any, *, chance: float = CHANCE, margin: float = RETENTION_MARGIN) -> np.ndarray:
    """Per-task chance-corrected retention rho_j = (R[T-1, j] - c) / (R[j, j] - c).

    The share of what task j had learnt above chance right after training on it that is still
    there at the end (cl-bench's definition, docs/metrics.md; no standard formula exists). 1 = all
    kept, 0 = back to chance, < 0 = below chance. The ratio explodes near chance (R[j, j] = 0.501
    and R[T-1, j] = 0.9 would give 400), so rho_j is NaN where R[j, j] - c < ``margin`` (with an
    :class:`UndefinedMetricWarning` naming the tasks, j < T-1) and where entries are NaN.
    rho_{T-1} = 1 by construction. c = 0.5 for AUROC, fpr_limit / 2 for AU-PRO
    (:func:`chance_level`).
    """
    R = _matrix(R)
    T = R.shape[0]
    j = np.arange(T)
    learnt = R[j, j] - chance
    kept = R[T - 1, j] - chance
    enough = learnt >= margin - _MARGIN_TOLERANCE
    near_chance = [int(k) for k in np.flatnonzero(~enough & np.isfinite(learnt)) if k < T - 1]
    if near_chance:
        warnings.warn(f"retention: task(s) {near_chance} gained less than {margin:g} above the "
                      f"chance level {chance:g} (R[j, j] - c < {margin:g}); their retention is "
                      "NaN", UndefinedMetricWarning, stacklevel=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(enough, kept / np.where(enough, learnt, 1.0), np.nan)
    return rho


def retention_ratio(R: Any, *, chance: float = CHANCE,
                    margin: float = RETENTION_MARGIN) -> float:
    """Retention of a run: the ratio of sums over the tasks before the last,

        rho = sum_{j<T-1} (R[T-1, j] - c) / sum_{j<T-1} (R[j, j] - c),

    over the tasks j < T-1 where both entries are defined (the last task has nothing to retain).
    Each task weighs by what it had learnt, so a barely-learnt task adds little to both sums
    instead of dominating a mean of ratios. NaN, with an :class:`UndefinedMetricWarning`, where
    the mean gain above chance (1/n) sum_j (R[j, j] - c) is below ``margin``; NaN for T = 1.
    """
    R = _matrix(R)
    T = R.shape[0]
    j = np.arange(T - 1)
    learnt = R[j, j] - chance
    kept = R[T - 1, j] - chance
    both = np.isfinite(learnt) & np.isfinite(kept)
    if not both.any():
        return float("nan")
    mean_learnt = float(learnt[both].mean())
    if mean_learnt < margin - _MARGIN_TOLERANCE:
        warnings.warn(f"retention: the mean gain above chance of the tasks before the last, "
                      f"mean_j (R[j, j] - c) = {mean_learnt:+.3f} with c = {chance:g}, is below "
                      f"the margin {margin:g}; retention is NaN", UndefinedMetricWarning,
                      stacklevel=2)
        return float("nan")
    return float(kept[both].sum() / learnt[both].sum())


def chance_level(metric: str, fpr_limit: float = 0.3) -> float | None:
    """The score of an uninformative detector for ``metric``; None where it depends on the data
    (AP, F1-max: the share of positives).

    0.5 for image and pixel AUROC; ``fpr_limit / 2`` for AU-PRO: a random map has PRO(FPR) = FPR,
    whose integral up to the limit L, divided by L, is L / 2.
    """
    if metric in ("image_auroc", "pixel_auroc"):
        return CHANCE
    if metric == "au_pro":
        if not 0 < fpr_limit <= 1:
            raise MetricInputError(f"AU-PRO fpr_limit must be in (0, 1], got {fpr_limit}")
        return fpr_limit / 2
    return None


def mean_retention(R: Any, *, chance: float = CHANCE, margin: float = RETENTION_MARGIN) -> float:
    """Mean of the per-task rho_j over j < T-1 (:func:`retention`); NaN for T = 1.

    Kept for per-task analyses; the reports use :func:`retention_ratio`, which a barely-learnt
    task cannot dominate.
    """
    return _nanmean(retention(R, chance=chance, margin=margin)[:-1])


def intransigence(R: Any, joint_reference: Any) -> np.ndarray:
    """Per-task intransigence I_k = R*_k - R[k, k] (Chaudhry et al., ECCV 2018).

    R*_k: the reference on task k, here the joint-training model (one value per task, or one
    scalar for all). Positive = the continual model learns task k worse than joint training.
    """
    R = _matrix(R)
    T = R.shape[0]
    ref = _vector(joint_reference, T, "joint_reference")
    k = np.arange(T)
    return ref - R[k, k]


def mean_intransigence(R: Any, joint_reference: Any) -> float:
    """Mean over all tasks of I_k (:func:`intransigence`), NaN terms left out."""
    return _nanmean(intransigence(R, joint_reference))


def summarize(R: Any, baseline: Any = None, joint_reference: Any = None,
              chance: float | None = CHANCE) -> dict[str, float]:
    """All summaries of one R: ``acc``, ``lower_triangle``, ``fm``, ``bwt``, ``fwt`` (NaN without
    a baseline), ``retention`` (mean, j < T-1, chance-corrected with ``chance``; NaN when
    ``chance`` is None, i.e. the metric has no fixed chance level) and ``intransigence`` (mean,
    when a joint reference is given).

    Chance levels: 0.5 for image and pixel AUROC; ``fpr_limit / 2`` for AU-PRO (a random map
    has PRO(FPR) = FPR, whose normalised integral up to the limit L is L/2); none for AP, whose
    chance level is the share of defective images or pixels of each task."""
    R = _matrix(R)
    out = {
        "acc": final_average(R),
        "lower_triangle": lower_triangle_average(R),
        "fm": forgetting_measure(R),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, baseline) if baseline is not None else float("nan"),
        "retention": (retention_ratio(R, chance=chance) if chance is not None
                      else float("nan")),
    }
    if joint_reference is not None:
        out["intransigence"] = mean_intransigence(R, joint_reference)
    return out


def _pooled(scores_by_task: Mapping[int, Any] | Sequence[Any],
            labels_by_task: Mapping[int, Any] | Sequence[Any],
            upto: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The scores and labels of tasks 0..upto, concatenated in task order (None: no such task)."""
    keys = sorted(scores_by_task) if isinstance(scores_by_task, Mapping) else list(
        range(len(scores_by_task)))
    seen = [k for k in keys if k <= upto]
    missing = [k for k in seen if (k not in labels_by_task if isinstance(labels_by_task, Mapping)
                                   else k >= len(labels_by_task))]
    if missing:
        raise MetricInputError(f"pooled metrics: labels missing for task(s) {missing}")
    if not seen:
        return None
    scores = np.concatenate([np.asarray(scores_by_task[k]).ravel() for k in seen])
    labels = np.concatenate([np.asarray(labels_by_task[k]).ravel() for k in seen])
    return scores, labels


def pooled_image_metrics(scores_by_task: Mapping[int, Any] | Sequence[Any],
                         labels_by_task: Mapping[int, Any] | Sequence[Any],
                         upto: int) -> dict[str, float]:
    """Task-agnostic image AUROC and AP after step ``upto``: the test images of tasks 0..upto
    pooled and ranked together (one model, no task identity); ``{}`` when no task <= upto has
    scores. The run's ``pooled`` records.

    Per-task AUROC only ranks within a category, so calibration drift between categories stays
    hidden; the pooled AUROC exposes it (continual-ad notes, section 3).
    """
    pooled = _pooled(scores_by_task, labels_by_task, upto)
    if pooled is None:
        return {}
    scores, labels = pooled
    return {"image_auroc": image_auroc(scores, labels, task="pooled"),
            "image_ap": image_ap(scores, labels, task="pooled")}


def pooled_image_auroc(scores_by_task: Mapping[int, Any] | Sequence[Any],
                       labels_by_task: Mapping[int, Any] | Sequence[Any], upto: int) -> float:
    """The image AUROC of :func:`pooled_image_metrics`; NaN with a warning when no task <= upto
    has scores."""
    pooled = _pooled(scores_by_task, labels_by_task, upto)
    if pooled is None:
        warnings.warn(f"pooled AUROC: no task <= {upto} has scores; reporting NaN",
                      UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    return image_auroc(*pooled, task=f"pooled tasks 0..{upto}")


__all__ = [
    "CHANCE",
    "RETENTION_MARGIN",
    "backward_transfer",
    "chance_level",
    "final_average",
    "forgetting",
    "forgetting_measure",
    "forward_transfer",
    "intransigence",
    "lower_triangle_average",
    "mean_intransigence",
    "mean_retention",
    "pooled_image_auroc",
    "pooled_image_metrics",
    "retention",
    "retention_ratio",
    "summarize",
]
