"""How the report names and orders what it shows: metrics, per-run quantities, detectors,
strategies and (detector, strategy) configurations.

Every table, figure and ``report.md`` takes its labels and orders from here, so one metric or
configuration is named and placed the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cl_bench.errors import DataError
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


@dataclass(frozen=True)
class RecordedDetectors:
    """The detectors as the runs recorded them (manifest key ``detectors``, written by
    ``strategies.detectors.detector_looks`` when a run starts): ``labels`` ``{name: label}`` in
    registration order and ``colors`` ``{name: "#RRGGBB"}``.

    While a report uses them (:func:`detectors_as_recorded`), :func:`method_label`,
    :func:`method_sort_key` and the figures' colours read them instead of the detector registry:
    the report then imports no detector module (nor torch, which they import), and a run's
    figures look the same on a machine where a detector plugin it used is not installed.
    """

    labels: dict[str, str]
    colors: dict[str, str]


_RECORDED: ContextVar[RecordedDetectors | None] = ContextVar("recorded_detectors", default=None)


def recorded_detectors(runs: Sequence[tuple[Path, Mapping[str, Any]]],
                       methods: Sequence[str]) -> RecordedDetectors | None:
    """The detectors recorded by the manifests of ``runs`` (``(folder, manifest)`` pairs), merged
    in order of first appearance; None where some manifest has no ``detectors`` (a run made
    before they were recorded) or some of ``methods`` is described by none: the report then
    asks the detector registry. A malformed entry is an error naming the manifest.
    """
    labels: dict[str, str] = {}
    colors: dict[str, str] = {}
    for folder, manifest in runs:
        entries = manifest.get("detectors")
        if entries is None:
            return None
        for k, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str)
                                                    for key in ("name", "label", "color"))):
                raise DataError(
                    f"{Path(folder) / 'manifest.json'}: detectors[{k}] = {entry!r} is not "
                    '{"name": ..., "label": ..., "color": "#RRGGBB"}; delete the key '
                    '"detectors" and the report names and colours the detectors as they are '
                    "installed")
            labels.setdefault(entry["name"], entry["label"])
            colors.setdefault(entry["name"], entry["color"])
    if not labels or set(methods) - set(labels):
        return None
    return RecordedDetectors(labels, colors)


@contextmanager
def detectors_as_recorded(recorded: RecordedDetectors | None) -> Iterator[None]:
    """Within the block, name, order and colour detectors as ``recorded`` (None: as the
    detector registry does)."""
    token = _RECORDED.set(recorded)
    try:
        yield
    finally:
        _RECORDED.reset(token)


def current_recorded_detectors() -> RecordedDetectors | None:
    return _RECORDED.get()


def method_label(method: str) -> str:
    """The detector's registered label (as the run recorded it, :class:`RecordedDetectors`);
    the name itself for a detector not registered here."""
    recorded = _RECORDED.get()
    if recorded is not None:
        return recorded.labels.get(method, method)
    from strategies.detectors import detector_names, get_detector

    return get_detector(method).display_label if method in detector_names() else method


def method_sort_key(method: str) -> tuple[int, str]:
    """The detectors' registration order (:func:`strategies.detectors.detector_names`, or as
    the runs recorded it); a detector not registered here (its plugin not installed) after
    them, by name."""
    recorded = _RECORDED.get()
    if recorded is not None:
        order = list(recorded.labels)
    else:
        from strategies.detectors import detector_names

        order = detector_names()
    return (order.index(method) if method in order else len(order)), method


def strategy_sort_key(strategy: str) -> tuple[int, str]:
    return reference_rank(strategy), strategy


def config_sort_key(config: tuple) -> tuple:
    method, strategy = config[0], config[1]
    return strategy_sort_key(strategy), method_sort_key(method)
