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
#: True where a smaller value is better
LOWER_IS_BETTER = {"fm": True, "intransigence": True, "memory_mb_per_task": True,
                   "retention_excluded": True, "memory_mb_total": True}
KNOWN_METHODS = ("stpm", "rd4ad", "hybrid")
HYBRID = "hybrid"


def metric_label(metric: str, fpr_limit: float | None = None) -> str:
    """How a metric is named in tables and figures; AU-PRO carries its FPR limit,
    e.g. "AU-PRO (0.05)"."""
    label = METRIC_LABELS.get(metric, metric)
    if metric == "au_pro" and fpr_limit is not None and np.isfinite(fpr_limit):
        label += f" ({fpr_limit:g})"
    return label


def config_label(method: str, strategy: str, task_aware: bool = False) -> str:
    """How a (method, strategy) is named in every table and figure."""
    label = f"{method} / {strategy}"
    if is_task_aware(strategy, task_aware):
        label += " (task-aware oracle)"
    return label


def method_sort_key(method: str) -> tuple[int, str]:
    rank = KNOWN_METHODS.index(method) if method in KNOWN_METHODS else len(KNOWN_METHODS)
    return rank, method


def strategy_sort_key(strategy: str) -> tuple[int, str]:
    return reference_rank(strategy), strategy


def config_sort_key(config: tuple) -> tuple:
    method, strategy = config[0], config[1]
    return strategy_sort_key(strategy), method_sort_key(method)
