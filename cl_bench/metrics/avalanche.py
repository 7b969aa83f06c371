"""Anomaly metrics as Avalanche plugin metrics (``EvaluationPlugin``), and reading R back.

:class:`AnomalyMetrics` is one ``PluginMetric`` holding one :class:`TaskEvaluator`: it is reset
in ``before_eval_exp``, fed in ``after_eval_iteration`` from the strategy's
``mb_anomaly_map`` (B,1,H,W), ``mb_image_score`` (B,), ``mb_y`` (labels) and ``mb_mask``
(B,1,H,W), and in ``after_eval_exp`` it computes every requested metric of the experience from
one ranking of its pixels and emits one ``MetricValue`` per metric, named by Avalanche's
convention (``get_metric_name``)::

    ImageAUROC_Exp/eval_phase/test_stream/Exp003      (per evaluated experience)
    ImageAUROC_Stream/eval_phase/test_stream          (mean over the evaluated experiences)

Base names: ImageAUROC, ImageAP, PixelAUROC, PixelAP, AUPRO (ImageF1Max, PixelF1Max). Values are
plain floats, so Avalanche's interactive, text and TensorBoard loggers show them. Stream means
leave NaN experiences out (nanmean). Usage::

    evaluator = EvaluationPlugin(*anomaly_metrics(), loggers=[InteractiveLogger()],
                                 strict_checks=False)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name

from cl_bench.errors import RunError
from cl_bench.metrics.accumulator import ALL_KEYS, TaskEvaluator
from cl_bench.metrics.inputs import MetricInputError

#: metric key (records.csv) -> Avalanche base name
AVALANCHE_NAMES = {
    "image_auroc": "ImageAUROC",
    "image_ap": "ImageAP",
    "pixel_auroc": "PixelAUROC",
    "pixel_ap": "PixelAP",
    "au_pro": "AUPRO",
    "image_f1_max": "ImageF1Max",
    "pixel_f1_max": "PixelF1Max",
}
_KEYS_BY_NAME = {name: key for key, name in AVALANCHE_NAMES.items()}
_PIXEL = {"pixel_auroc", "pixel_ap", "au_pro", "pixel_f1_max"}
_STRATEGY_FIELDS = ("mb_anomaly_map", "mb_image_score", "mb_y", "mb_mask")


class AnomalyMetrics(PluginMetric[dict]):
    """Image/pixel AUROC, AP and AU-PRO per evaluated experience and as a stream mean.

    metrics: keys among ``image_auroc, image_ap, pixel_auroc, pixel_ap, au_pro`` (and
    ``image_f1_max``, ``pixel_f1_max``); experience/stream: which values to emit;
    device: where the experience's maps are kept and ranked (None: where they arrive).
    """

    def __init__(self, metrics: Iterable[str] = ALL_KEYS, *, fpr_limit: float = 0.3,
                 experience: bool = True, stream: bool = True,
                 device: str | None = None) -> None:
        super().__init__()
        self.metrics = tuple(dict.fromkeys((metrics,) if isinstance(metrics, str) else metrics))
        unknown = [m for m in self.metrics if m not in AVALANCHE_NAMES]
        if unknown or not self.metrics:
            raise MetricInputError(f"unknown or no anomaly metric(s) {unknown}; choose among "
                                   f"{', '.join(AVALANCHE_NAMES)}")
        self.emit_experience = experience
        self.emit_stream = stream
        f1 = any(m.endswith("f1_max") for m in self.metrics)
        self._evaluator = TaskEvaluator(fpr_limit=fpr_limit, f1_max=f1, device=device,
                                        pixel=any(m in _PIXEL for m in self.metrics))
        self._last: dict[str, float] = {}
        self._stream_values: dict[str, list[float]] = {m: [] for m in self.metrics}

    def __str__(self) -> str:
        return "AnomalyMetrics"

    def result(self) -> dict[str, float]:
        """The metrics of the last evaluated experience."""
        return dict(self._last)

    def reset(self) -> None:
        self._evaluator.reset()
        self._last = {}

    # ------------------------------------------------------------------------- callbacks
    def before_eval(self, strategy: Any) -> None:
        self._stream_values = {m: [] for m in self.metrics}

    def before_eval_exp(self, strategy: Any) -> None:
        exp = strategy.experience
        name = getattr(exp, "category", None) or f"experience {exp.current_experience}"
        self.reset()
        self._evaluator.reset(task=str(name))

    def after_eval_iteration(self, strategy: Any) -> None:
        missing = [f for f in _STRATEGY_FIELDS if getattr(strategy, f, None) is None]
        if missing:
            raise RunError(f"the anomaly metrics read {', '.join(_STRATEGY_FIELDS)} from the "
                           f"strategy after each evaluation batch, but {', '.join(missing)} "
                           "is missing or None; the strategy's eval forward must set them "
                           "(and the test items must carry masks)")
        self._evaluator.update(strategy.mb_anomaly_map, strategy.mb_mask,
                               scores=strategy.mb_image_score, labels=strategy.mb_y)

    def after_eval_exp(self, strategy: Any) -> list[MetricValue] | None:
        computed = self._evaluator.compute()
        self._last = {m: float(computed[m]) for m in self.metrics}
        self._evaluator.reset()  # free the maps now, not at the next experience
        for m, value in self._last.items():
            self._stream_values[m].append(value)
        if not self.emit_experience:
            return None
        x = strategy.clock.train_iterations
        return [MetricValue(self, get_metric_name(f"{AVALANCHE_NAMES[m]}_Exp", strategy,
                                                  add_experience=True), value, x)
                for m, value in self._last.items()]

    def after_eval(self, strategy: Any) -> list[MetricValue] | None:
        if not self.emit_stream or not any(self._stream_values.values()):
            return None
        x = strategy.clock.train_iterations
        values = []
        for m, per_exp in self._stream_values.items():
            defined = [v for v in per_exp if not math.isnan(v)]
            mean = float(np.mean(defined)) if defined else float("nan")
            name = get_metric_name(f"{AVALANCHE_NAMES[m]}_Stream", strategy,
                                   add_experience=False, add_task=False)
            values.append(MetricValue(self, name, mean, x))
        return values


class ImageAUROC(AnomalyMetrics):
    """Image AUROC per experience and stream (no maps kept)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(("image_auroc",), **options)


class PixelAUROC(AnomalyMetrics):
    """Pixel AUROC per experience and stream."""

    def __init__(self, **options: Any) -> None:
        super().__init__(("pixel_auroc",), **options)


class AUPRO(AnomalyMetrics):
    """AU-PRO (MVTec AD, FPR limit ``fpr_limit``) per experience and stream."""

    def __init__(self, **options: Any) -> None:
        super().__init__(("au_pro",), **options)


def anomaly_metrics(*, image_auroc: bool = True, pixel_auroc: bool = True, au_pro: bool = True,
                    image_ap: bool = False, pixel_ap: bool = False, f1_max: bool = False,
                    metrics: Iterable[str] | None = None, fpr_limit: float = 0.3,
                    experience: bool = True, stream: bool = True,
                    device: str | None = None) -> list[PluginMetric]:
    """The plugin metrics for ``EvaluationPlugin(*anomaly_metrics(), ...)``.

    One :class:`AnomalyMetrics` for all requested metrics, so every pixel metric of an
    experience comes from one ranking. ``metrics`` (a list of keys such as
    ``["image_auroc", "au_pro"]``) overrides the boolean flags.
    """
    if metrics is None:
        flags = {"image_auroc": image_auroc, "image_ap": image_ap, "pixel_auroc": pixel_auroc,
                 "pixel_ap": pixel_ap, "au_pro": au_pro, "image_f1_max": f1_max,
                 "pixel_f1_max": f1_max}
        metrics = [key for key, on in flags.items() if on]
    return [AnomalyMetrics(metrics, fpr_limit=fpr_limit, experience=experience, stream=stream,
                           device=device)]


def _experience_pattern(stream: str) -> re.Pattern[str]:
    return re.compile(rf"^(\w+)_Exp/eval_phase/{re.escape(stream)}_stream/"
                      r"(?:Task\d+/)?Exp(\d+)$")


def read_experience_metrics(metrics: Mapping[str, Any], experience: int, *,
                            stream: str = "test") -> dict[str, float]:
    """``{key: value}`` of one experience from ``evaluator.get_last_metrics()``.

    Keys as in records.csv (``image_auroc``, ``au_pro``, ...); only the metrics present.
    """
    pattern = _experience_pattern(stream)
    out = {}
    for name, value in metrics.items():
        match = pattern.match(name)
        if match and int(match[2]) == experience and match[1] in _KEYS_BY_NAME:
            out[_KEYS_BY_NAME[match[1]]] = float(value)
    return out


def result_matrix_from_metrics(all_metrics: Mapping[str, tuple[list[int], list[Any]]],
                               metric: str, n_tasks: int, *,
                               stream: str = "test") -> np.ndarray:
    """The result matrix of one metric from ``evaluator.get_all_metrics()``.

    metric: a key (``"image_auroc"``) or Avalanche base name (``"ImageAUROC"``). Rows are the
    evaluations in order of their x position (training iterations when they ran), columns the
    experiences 0..n_tasks-1, NaN where an experience was not evaluated. Evaluating the untrained
    model first and then after every task gives T+1 rows: row 0 = the baseline b, rows 1.. = R.
    """
    base = AVALANCHE_NAMES.get(metric, metric)
    if base not in _KEYS_BY_NAME:
        raise MetricInputError(f"unknown metric {metric!r}; choose among "
                               f"{', '.join(AVALANCHE_NAMES)} or {', '.join(_KEYS_BY_NAME)}")
    pattern = _experience_pattern(stream)
    series: dict[int, tuple[list[int], list[Any]]] = {}
    for name, (xs, values) in all_metrics.items():
        match = pattern.match(name)
        if match and match[1] == base:
            series[int(match[2])] = (list(xs), list(values))
    if not series:
        raise MetricInputError(f"no '{base}_Exp/eval_phase/{stream}_stream/...' values in the "
                               "metrics; was the evaluator built with anomaly_metrics() and "
                               "the stream evaluated?")
    outside = [j for j in series if not 0 <= j < n_tasks]
    if outside:
        raise MetricInputError(f"experience(s) {outside} outside 0..{n_tasks - 1}; "
                               "check n_tasks")
    rows = sorted({x for xs, _ in series.values() for x in xs})
    row_of = {x: i for i, x in enumerate(rows)}
    R = np.full((len(rows), n_tasks), np.nan)
    for j, (xs, values) in series.items():
        if len(set(xs)) != len(xs):
            raise MetricInputError(f"experience {j} of {base} was evaluated twice at the same "
                                   "training iteration; rows would be ambiguous")
        for x, value in zip(xs, values, strict=True):
            R[row_of[x], j] = float(value)
    return R


__all__ = [
    "AUPRO",
    "AVALANCHE_NAMES",
    "AnomalyMetrics",
    "ImageAUROC",
    "PixelAUROC",
    "anomaly_metrics",
    "read_experience_metrics",
    "result_matrix_from_metrics",
]
