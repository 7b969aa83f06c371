"""The ``independent`` strategy's calibration plugin (:mod:`strategies.continual.calibration`),
apart from the options and statistics so that listing and validating strategies loads no
Avalanche."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import Tensor

from strategies.continual.calibration import (
    CalibrationOptions,
    HoldoutCalibration,
    ScoredOutput,
    make_calibration,
)
from strategies.detectors.base import DetectorOutput


class CalibrationPlugin(SupervisedPlugin):
    """Calibrates the one detector of an ``independent`` step (``strategy.independent``):
    training on the kept images, statistics on the held-out ones after the detector's own
    calibration, and in evaluation the maps put on the calibrated scale (:meth:`score_batch`,
    which the strategy calls instead of the detector) with the raw image scores kept."""

    def __init__(self, calibration: HoldoutCalibration) -> None:
        super().__init__()
        self.calibration = calibration

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.calibration.split(strategy)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.calibration.remember_start(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.calibration.measure(strategy)

    @torch.no_grad()
    def score_batch(self, strategy, images: Tensor) -> DetectorOutput:
        """The detector's output with its maps calibrated by the last trained task's
        statistics; the detector's own output before any training (the untrained row)."""
        detector = strategy.detector
        with strategy._autocast():
            out = detector(images)
        if not self.calibration.stats:
            return out
        raw = detector.anomaly_map_from_output(out, tuple(images.shape[-2:])).float()
        return ScoredOutput(teacher=out.teacher, students=out.students,
                            anomaly_map=self.calibration.stats[-1].apply(raw),
                            uncalibrated_image_score=detector.image_scores(raw))

    def state_dict(self) -> dict:
        return {"calibration": self.calibration.state_dict()}

    def load_state_dict(self, state: dict, strategy=None) -> None:
        self.calibration.load_state_dict(state["calibration"])


def make_calibration_plugins(options: CalibrationOptions, seed: int) -> list:
    """``independent``'s plugins: a :class:`CalibrationPlugin` unless ``calibration: none``."""
    calibration = make_calibration(options, seed)
    return [] if calibration is None else [CalibrationPlugin(calibration)]
