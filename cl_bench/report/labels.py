"""How the report names and orders what it shows: metrics, per-run quantities, detectors,
strategies and (detector, strategy) configurations.

Every table, figure and ``report.md`` takes its labels and orders from here, so one metric or
configuration is named and placed the same way everywhere.
"""

from __future__ import annotations

import numpy as np

from cl_bench.report.strategy_kinds import is_task_aware, reference_rank

#: metrics in the order tables and figures show them; the F1-max keys are those of
#: :data:`cl_bench.metrics.ALL_KEYS` (TaskEvaluator, the Avalanche plugin's ``f1_max`` option)
METRIC_ORDER = ("image_auroc", "pixel_auroc", "au_pro", "image_ap", "pixel_ap", "image_f1_max",
                "pixel_f1_max")
METRIC_LABELS = {
    "image_auroc": "Image AUROC", "pixel_auroc": "Pixel AUROC", "au_pro": "AU-PRO",
    "image_ap": "Image AP", "pixel_ap": "Pixel AP", "image_f1_max": "Image F1-max",
    "pixel_f1_max": "Pixel F1-max",
}
#: per-run quantities: keys of ``summarize`` plus the final task-agnostic pooled metric
QUANTITIES = ("acc", "fm", "bwt", "fwt", "retention", "intransigence", "pooled")
QUANTITY_LABELS = {
    "acc": "ACC", "lower_triangle": "Lower-triangle avg", "fm": "FM", "bwt": "BWT",
    "fwt": "FWT", "retention": "Retention", "intransigence": "Intransigence",
    "pooled": "Pooled (final)", "retention_low": "Retention 95% low",
    "retention_high": "Retention 95% high", "retention_excluded": "Retention: tasks excluded",
}
#: retention's bootstrap interval over tasks and count of excluded tasks (summary table and
#: per-run CSV; no paired test)
RETENTION_DETAILS = ("retention_low", "retention_high", "retention_excluded")
#: per-run quantities read from side metrics (strategies that record them, e.g. routing):
#: the pooled value after the final step; memory divided by the number of tasks
SIDE_QUANTITIES = ("task_id_acc", "task_id_acc_good", "task_id_acc_defective",
                   "memory_mb_per_task", "memory_mb_total")
QUANTITY_LABELS.update({"task_id_acc": "Task-ID acc (final)", "task_id_acc_good": "Task-ID good",
                        "task_id_acc_defective": "Task-ID defective",
                        "memory_mb_per_task": "Memory/task (MB)",
                        "memory_mb_total": "Memory total (MB)"})
#: the calibration gap of a run after the final task (docs/metrics.md, "Calibration gap"):
#: ``gap`` = mean_j R[T-1, j] - pooled (every metric with a pooled value), and for image AUROC,
#: where the run recorded its raw scores next to calibrated ones (strategies.continual.calibration),
#: the same of the uncalibrated scores; descriptive columns, not ranked, shown when some run of the
#: report is calibrated
CALIBRATION_QUANTITIES = ("gap", "pooled_uncalibrated", "gap_uncalibrated")
QUANTITY_LABELS.update({"gap": "Gap (ACC - pooled)",
                        "pooled_uncalibrated": "Pooled uncalibrated",
                        "gap_uncalibrated": "Gap uncalibrated"})
#: the side metric that holds the raw scores' image AUROC (per task and pooled)
UNCALIBRATED_METRIC = "image_auroc_uncalibrated"
#: per-task routing side metrics shown in the routing diagnostics table, with their labels
ROUTING_DIAGNOSTICS = {"task_id_acc": "Task-ID acc",
                       "image_auroc_routed_right": "Image AUROC routed right",
                       "image_auroc_misrouted": "Image AUROC misrouted",
                       "pixel_auroc_routed_right": "Pixel AUROC routed right",
                       "pixel_auroc_misrouted": "Pixel AUROC misrouted",
                       "routing_margin_low_frac": "Low-margin share"}
#: True where a smaller value is better
LOWER_IS_BETTER = {"fm": True, "intransigence": True, "memory_mb_per_task": True,
                   "retention_excluded": True, "memory_mb_total": True}
#: the detector the paired comparison holds against each other one (the seed paper's): a role
#: the report gives it, not a list of the detectors (those come from the detector registry)
HYBRID = "hybrid"


def metric_label(metric: str, fpr_limit: float | None = None) -> str:
    """How a metric is named in tables and figures; AU-PRO carries its FPR limit,
    e.g. "AU-PRO (0.05)"."""
    label = METRIC_LABELS.get(metric, metric)
    if metric == "au_pro" and fpr_limit is not None and np.isfinite(fpr_limit):
        label += f" ({fpr_limit:g})"
    return label


def config_label(method: str, strategy: str, task_aware: bool = False) -> str:
    """How a (method, strategy) is named in every table and figure: the detector's registered
    ``label`` (its name by default)."""
    label = f"{method_label(method)} / {strategy}"
    if is_task_aware(strategy, task_aware):
        label += " (task-aware oracle)"
    return label


def method_label(method: str) -> str:
    """The detector's registered label; the name itself for a detector not registered here."""
    from strategies.detectors import detector_names, get_detector

    return get_detector(method).display_label if method in detector_names() else method


def method_sort_key(method: str) -> tuple[int, str]:
    """The detectors' registration order (:func:`strategies.detectors.detector_names`); a
    detector not registered here (its plugin not installed) after them, by name."""
    from strategies.detectors import detector_names

    order = detector_names()
    return (order.index(method) if method in order else len(order)), method


def strategy_sort_key(strategy: str) -> tuple[int, str]:
    return reference_rank(strategy), strategy


def config_sort_key(config: tuple) -> tuple:
    method, strategy = config[0], config[1]
    return strategy_sort_key(strategy), method_sort_key(method)
