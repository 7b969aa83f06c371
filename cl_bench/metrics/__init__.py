"""Anomaly metrics, their streaming per-task evaluation, and continual-learning metrics.

- :mod:`~cl_bench.metrics.anomaly`: reference functions (scikit-learn AUROC/AP, exact AU-PRO).
- :mod:`~cl_bench.metrics.ranking`: all pixel metrics of a task from one ranking (fast path).
- :mod:`~cl_bench.metrics.accumulator`: :class:`TaskEvaluator`, batch by batch, one task at a time.
- :mod:`~cl_bench.metrics.continual`: ACC, FM, BWT, FWT, retention, intransigence from R.
- :mod:`cl_bench.metrics.avalanche` (imported on demand): Avalanche plugin metrics.

The package loads its modules on first use (PEP 562 module ``__getattr__``): ``from
cl_bench.metrics import au_pro`` imports :mod:`~cl_bench.metrics.anomaly` only, so the report,
which needs the continual-learning metrics, never loads torch through the streaming evaluator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from cl_bench.metrics.anomaly import image_f1_max as f1_max
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

#: the module that defines each public name (``f1_max``, the PLAN's name for the best-F1
#: metric at image level, is :func:`~cl_bench.metrics.anomaly.image_f1_max`)
_SOURCES: dict[str, tuple[str, str]] = {
    **{name: ("accumulator", name) for name in ("ALL_KEYS", "PixelMetricAccumulator",
                                                 "TaskEvaluator")},
    **{name: ("anomaly", name) for name in (
        "au_pro", "image_ap", "image_auroc", "image_f1_max", "label_regions", "pixel_ap",
        "pixel_auroc", "pixel_f1_max", "pro_curve", "trapezoid_area")},
    **{name: ("continual", name) for name in (
        "backward_transfer", "final_average", "forgetting", "forgetting_measure",
        "forward_transfer", "intransigence", "lower_triangle_average", "mean_intransigence",
        "mean_retention", "pooled_image_auroc", "pooled_image_metrics", "retention",
        "retention_excluded", "retention_interval", "retention_ratio", "summarize")},
    "MetricInputError": ("inputs", "MetricInputError"),
    "UndefinedMetricWarning": ("inputs", "UndefinedMetricWarning"),
    "pixel_metrics": ("ranking", "pixel_metrics"),
    "f1_max": ("anomaly", "image_f1_max"),
}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access and keep the value (PEP 562)."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _SOURCES[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
