"""The options of per-expert score calibration (``calibration``, ``calibration_holdout``),
shared by ``routing`` and ``independent``; what they do is in
:mod:`strategies.continual.calibration`. A module without torch: the strategy registry (read by
``cl-bench list`` and the report) declares these options without loading the calibration code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from strategies.continual.spec import StrategyOptions

CalibrationKind = Literal["none", "zscore", "quantile"]
CALIBRATION_KINDS: tuple[str, ...] = ("none", "zscore", "quantile")
#: the upper quantile of the ``quantile`` scale
UPPER_QUANTILE = 0.99


class CalibrationOptions(StrategyOptions):
    """``calibration``: ``none`` (default: each expert's raw scores are pooled), ``zscore`` or
    ``quantile`` (module docstring); ``calibration_holdout``: the fraction of each task's
    training images held out of training to estimate the statistics (at least one image, and
    at least one left to train on; unused with ``none``). 0.1: with 10 images per task and
    batch 8 (mvtec_ad_mini) one held-out image keeps two batches per epoch; two would halve the
    optimizer steps (measured in docs/results/routing_calibration.md)."""

    calibration: CalibrationKind = "none"
    calibration_holdout: float = Field(0.1, gt=0.0, lt=1.0)
