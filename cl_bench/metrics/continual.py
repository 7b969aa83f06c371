"""Continual-learning metrics from a result matrix R (docs/metrics.md).

R is a float array (T, T): row i = evaluation after training task i, column j = task j, NaN where
not evaluated. ``baseline`` (T,) is the untrained model's row (b_j = R[-1, j]). All tasks are
0-indexed, so the final row is R[T-1].

NaN handling: where a formula averages over tasks, NaN terms are left out of the mean (nanmean,
the divisor counts the defined terms only); where nothing is defined (e.g. T = 1 for
forgetting, BWT and FWT, or a column never evaluated) the result is NaN. No warnings are raised
for NaN entries; they are an expected part of a partially evaluated R.

Retention (cl-bench's chance-corrected definition, :func:`retention_ratio`), bounded in [0, 1]::

    f_j   = clip((R[T-1, j] - c) / (R[j, j] - c), 0, 1)      the retained fraction of task j's gain
    w_j   = max(R[j, j] - c - m, 0)                           its weight, m = RETENTION_MARGIN
    rho   = sum_{j<T-1} w_j f_j / sum_{j<T-1} w_j

with c the metric's chance level (:func:`chance_level`). Tasks that learnt no more than m above
chance weigh 0 (they are "excluded", and counted); the weight grows from 0 as the gain passes m,
so rho is continuous in R wherever it is defined, and NaN only when every task is excluded. Like
FM and BWT it runs over j < T-1: the last task is evaluated right after it is learnt, so it has
nothing to retain yet. :func:`retention_interval` bootstraps it over tasks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

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


#: retention's margin: a task whose gain above chance, R[j, j] - c, is at most this weighs 0
#: (in the metric's own units: 0.05 AUROC points, 0.05 AU-PRO points)
RETENTION_MARGIN = 0.05
#: float rounding allowed at the margin (R[j, j] = 0.55 with c = 0.5 is exactly at the margin)
_MARGIN_TOLERANCE = 1e-9
#: bootstrap resamples of :func:`retention_interval` (and its fixed seed: reports reproduce)
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def retention(R: Any, *, chance: float = CHANCE, margin: float = RETENTION_MARGIN) -> np.ndarray:
    """Per-task retained fraction f_j = clip((R[T-1, j] - c) / (R[j, j] - c), 0, 1), in [0, 1].

    The share of what task j had learnt above chance right after training on it that is still
    there at the end (cl-bench's definition; no standard formula exists). 1 = all kept (or
    more), 0 = back to chance or below. NaN where R[j, j] - c <= ``margin`` (with an
    :class:`UndefinedMetricWarning` naming the tasks, j < T-1): the ratio of two small numbers
    would be noise. f_{T-1} = 1 by construction. c = 0.5 for AUROC, fpr_limit / 2 for AU-PRO
    (:func:`chance_level`).
    """
    R = _matrix(R)
    T = R.shape[0]
    j = np.arange(T)
    learnt = R[j, j] - chance
    kept = R[T - 1, j] - chance
    enough = learnt > margin + _MARGIN_TOLERANCE
    near_chance = [int(k) for k in np.flatnonzero(~enough & np.isfinite(learnt)) if k < T - 1]
    if near_chance:
        warnings.warn(f"retention: task(s) {near_chance} gained at most {margin:g} above the "
                      f"chance level {chance:g} (R[j, j] - c <= {margin:g}); their retention is "
                      "NaN", UndefinedMetricWarning, stacklevel=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(enough, np.clip(kept / np.where(enough, learnt, 1.0), 0.0, 1.0), np.nan)
    return rho


def retention_terms(R: Any, *, chance: float = CHANCE,
                    margin: float = RETENTION_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """(w_j, f_j) of the tasks j < T-1 whose two entries are defined (module docstring):
    w_j = max(R[j, j] - c - margin, 0), f_j = clip((R[T-1, j] - c) / (R[j, j] - c), 0, 1)
    (f_j = 0 where w_j = 0: it does not count)."""
    R = _matrix(R)
    T = R.shape[0]
    j = np.arange(T - 1)
    learnt = R[j, j] - chance
    kept = R[T - 1, j] - chance
    both = np.isfinite(learnt) & np.isfinite(kept)
    learnt, kept = learnt[both], kept[both]
    weight = np.maximum(learnt - margin, 0.0)
    weight[weight <= _MARGIN_TOLERANCE] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(weight > 0, np.clip(kept / np.where(weight > 0, learnt, 1.0),
                                                0.0, 1.0), 0.0)
    return weight, fraction


def retention_ratio(R: Any, *, chance: float = CHANCE,
                    margin: float = RETENTION_MARGIN) -> float:
    """Retention of a run, in [0, 1]: rho = sum_{j<T-1} w_j f_j / sum_{j<T-1} w_j with
    f_j = clip((R[T-1, j] - c) / (R[j, j] - c), 0, 1) and w_j = max(R[j, j] - c - margin, 0).

    Each task weighs by its gain above the margin, so rho is continuous in R: a task entering at
    the margin starts with weight 0 instead of jumping in with its full ratio. NaN, with an
    :class:`UndefinedMetricWarning`, when no task j < T-1 learnt more than ``margin`` above
    chance (also for T = 1).
    """
    weight, fraction = retention_terms(R, chance=chance, margin=margin)
    if weight.size and not (weight > 0).any():
        warnings.warn(f"retention: no task before the last gained more than {margin:g} above "
                      f"the chance level {chance:g}; retention is NaN", UndefinedMetricWarning,
                      stacklevel=2)
    if not (weight > 0).any():
        return float("nan")
    return float(np.sum(weight * fraction) / np.sum(weight))


def retention_excluded(R: Any, *, chance: float = CHANCE,
                       margin: float = RETENTION_MARGIN) -> int:
    """How many tasks j < T-1 with defined entries weigh 0 in :func:`retention_ratio` (they
    learnt at most ``margin`` above chance)."""
    weight, _ = retention_terms(R, chance=chance, margin=margin)
    return int(np.sum(weight == 0))


def retention_interval(R: Any, *, chance: float = CHANCE, margin: float = RETENTION_MARGIN,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`retention_ratio` over the tasks (Efron &
    Tibshirani 1993): the weighted tasks (w_j > 0) resampled with replacement
    (``scipy.stats.bootstrap``, paired, BOOTSTRAP_RESAMPLES resamples, fixed seed). Within
    [0, 1] like rho; (NaN, NaN) with fewer than two weighted tasks."""
    weight, fraction = retention_terms(R, chance=chance, margin=margin)
    keep = weight > 0
    weight, fraction = weight[keep], fraction[keep]
    if weight.size < 2:
        return float("nan"), float("nan")
    if np.ptp(fraction) == 0:  # every resample gives the same rho
        return float(fraction[0]), float(fraction[0])

    def weighted(w: np.ndarray, f: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(w * f, axis=axis) / np.sum(w, axis=axis)

    result = stats.bootstrap((weight, fraction), weighted, paired=True, vectorized=True,
                             n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    low, high = result.confidence_interval
    return float(low), float(high)


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
    """Unweighted mean of the per-task f_j over j < T-1 (:func:`retention`), in [0, 1]; NaN
    for T = 1. Kept for per-task analyses; the reports use :func:`retention_ratio`, which is
    continuous where this mean jumps as a task crosses the margin.
    """
    return _nanmean(retention(R, chance=chance, margin=margin)[:-1])


def intransigence(R: Any, reference: Any) -> np.ndarray:
    """Per-task intransigence I_k = R*_k - R[k, k] (Chaudhry et al., "Riemannian Walk for
    Incremental Learning", ECCV 2018, Sec. 4.3).

    R*_k: the score on task k of a reference model trained on tasks 0..k together (one value
    per task; in cl-bench the diagonal of a ``cumulative`` run of the same detector, seed and
    order). Positive = the continual model learns task k worse than the reference.
    """
    R = _matrix(R)
    T = R.shape[0]
    ref = _vector(reference, T, "reference")
    k = np.arange(T)
    return ref - R[k, k]


def mean_intransigence(R: Any, reference: Any) -> float:
    """Mean over all tasks of I_k (:func:`intransigence`), NaN terms left out."""
    return _nanmean(intransigence(R, reference))


def summarize(R: Any, baseline: Any = None, reference: Any = None,
              chance: float | None = CHANCE) -> dict[str, float]:
    """All summaries of one R: ``acc``, ``lower_triangle``, ``fm``, ``bwt``, ``fwt`` (NaN without
    a baseline), ``retention`` (:func:`retention_ratio`, j < T-1, chance-corrected with
    ``chance``; NaN when ``chance`` is None, i.e. the metric has no fixed chance level) with
    ``retention_low`` / ``retention_high`` (:func:`retention_interval`) and
    ``retention_excluded`` (tasks of weight 0), and ``intransigence`` (mean, when a reference
    R*_k is given).

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
    }
    if chance is not None:
        low, high = retention_interval(R, chance=chance)
        out.update(retention=retention_ratio(R, chance=chance), retention_low=low,
                   retention_high=high,
                   retention_excluded=float(retention_excluded(R, chance=chance)))
    else:
        out.update(retention=float("nan"), retention_low=float("nan"),
                   retention_high=float("nan"), retention_excluded=float("nan"))
    if reference is not None:
        out["intransigence"] = mean_intransigence(R, reference)
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
    from cl_bench.metrics.anomaly import image_ap, image_auroc  # scikit-learn, not for the report

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
    from cl_bench.metrics.anomaly import image_auroc  # scikit-learn, not for the report

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
    "retention_excluded",
    "retention_interval",
    "retention_ratio",
    "retention_terms",
    "summarize",
]
