"""The options of per-expert score calibration (``calibration``, ``calibration_holdout``,
``calibration_folds``), shared by ``routing`` and ``independent``; what they do is in
:mod:`strategies.continual.calibration`. A module without torch: the strategy registry (read by
``cl-bench list`` and the report) declares these options without loading the calibration code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from strategies.continual.spec import StrategyOptions

CalibrationKind = Literal["none", "zscore", "quantile", "image_zscore"]
CALIBRATION_KINDS: tuple[str, ...] = ("none", "zscore", "quantile", "image_zscore")
#: kinds whose statistics are of image scores (one value per held-out image), not of pixels
IMAGE_LEVEL_KINDS: tuple[str, ...] = ("image_zscore",)
#: the upper quantile of the ``quantile`` scale
UPPER_QUANTILE = 0.99


class CalibrationOptions(StrategyOptions):
    """``calibration``: ``none`` (default: each expert's raw scores are pooled), ``zscore``,
    ``quantile`` (statistics of the held-out images' map pixels) or ``image_zscore`` (of their
    image scores; needs at least two held-out images, so cross-fitting) (module docstring);
    ``calibration_holdout``: the fraction of each task's training images held out of training to
    estimate the statistics (at least one image, and at least one left to train on; unused with
    ``none`` and with ``calibration_folds``). 0.1: with 10 images per task and batch 8
    (mvtec_ad_mini) one held-out image keeps two batches per epoch; two would halve the
    optimizer steps (measured in docs/results/routing_calibration.md).
    ``calibration_folds`` K: 0 (default) holds ``calibration_holdout`` out of training; K >= 2
    cross-fits instead: the expert trains on *all* its images, and K fold copies, each trained
    from the expert's starting point on all but one fold, map their fold, so that every training
    image is held out once (K extra trainings per task)."""

    calibration: CalibrationKind = "none"
    calibration_holdout: float = Field(0.1, gt=0.0, lt=1.0)
    calibration_folds: int = Field(0, ge=0)

    @field_validator("calibration_folds")
    @classmethod
    def _folds_zero_or_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("calibration_folds 1 would train the fold copy on no image: use 0 "
                             "(one held-out part, calibration_holdout) or K >= 2 (cross-fit)")
        return value

    @model_validator(mode="after")
    def _image_kinds_need_folds(self):
        if self.calibration in IMAGE_LEVEL_KINDS and self.calibration_folds < 2:
            raise ValueError(
                f"calibration {self.calibration!r} estimates a scale from the held-out images' "
                "image scores and needs several of them: set calibration_folds (e.g. 5), which "
                "holds every training image out once")
        return self
