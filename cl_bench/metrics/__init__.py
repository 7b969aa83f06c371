"""Anomaly metrics, their streaming per-task evaluation, and continual-learning metrics.

- :mod:`~cl_bench.metrics.anomaly`: reference functions (scikit-learn AUROC/AP, exact AU-PRO).
- :mod:`~cl_bench.metrics.ranking`: all pixel metrics of a task from one ranking (fast path).
- :mod:`~cl_bench.metrics.accumulator`: :class:`TaskEvaluator`, batch by batch, one task at a time.
- :mod:`~cl_bench.metrics.continual`: ACC, FM, BWT, FWT, retention, intransigence from R.
- :mod:`cl_bench.metrics.avalanche` (imported on demand): Avalanche plugin metrics.
"""

from cl_bench.metrics.accumulator import ALL_KEYS, PixelMetricAccumulator, TaskEvaluator
from cl_bench.metrics.anomaly import (
    au_pro,
    image_ap,
    image_auroc,
    image_f1_max,
    label_regions,
    pixel_ap,
    pixel_auroc,
    pixel_f1_max,
    pro_curve,
    trapezoid_area,
)
from cl_bench.metrics.continual import (
    backward_transfer,
    final_average,
    forgetting,
    forgetting_measure,
    forward_transfer,
    intransigence,
    lower_triangle_average,
    mean_intransigence,
    mean_retention,
    pooled_image_auroc,
    pooled_image_metrics,
    retention,
    retention_excluded,
    retention_interval,
    retention_ratio,
    summarize,
)
from cl_bench.metrics.inputs import MetricInputError, UndefinedMetricWarning
from cl_bench.metrics.ranking import pixel_metrics

#: the PLAN's name for the best-F1 metric (image level; pixel level: pixel_f1_max)
f1_max = image_f1_max

__all__ = [
    "ALL_KEYS",
    "MetricInputError",
    "PixelMetricAccumulator",
    "TaskEvaluator",
    "UndefinedMetricWarning",
    "au_pro",
    "backward_transfer",
    "f1_max",
    "final_average",
    "forgetting",
    "forgetting_measure",
    "forward_transfer",
    "image_ap",
    "image_auroc",
    "image_f1_max",
    "intransigence",
    "label_regions",
    "lower_triangle_average",
    "mean_intransigence",
    "mean_retention",
    "pixel_ap",
    "pixel_auroc",
    "pixel_f1_max",
    "pixel_metrics",
    "pooled_image_auroc",
    "pooled_image_metrics",
    "pro_curve",
    "retention",
    "retention_excluded",
    "retention_interval",
    "retention_ratio",
    "summarize",
    "trapezoid_area",
]
