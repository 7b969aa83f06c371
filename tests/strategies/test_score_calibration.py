"""Per-expert score calibration (strategies.continual.calibration): the held-out split, the
statistics, and two experts whose maps differ by a constant factor pooling better once
calibrated."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Subset, TensorDataset

from cl_bench.metrics import pooled_image_metrics
from strategies.continual.calibration import (
    HoldoutCalibration,
    holdout_split,
    map_statistics,
)
from strategies.continual.calibration_plugin import CalibrationPlugin
from strategies.detectors.base import AnomalyDetector, DetectorOutput
from strategies.errors import StrategiesError


class _Dataset(TensorDataset):
    """A TensorDataset with the two AvalancheDataset methods the calibration calls."""

    def subset(self, indices: list[int]) -> Subset:
        return Subset(self, indices)

    def eval(self) -> _Dataset:
        return self


class _ScaledDetector(AnomalyDetector):
    """A toy expert: its map is ``scale * (offset + mean |image| over channels)``. Two such
    experts see the same images yet put them on scales a constant factor apart."""

    def __init__(self, scale: float, offset: float = 1.0) -> None:
        super().__init__(nn.Identity())
        self.scale, self.offset = scale, offset

    def forward(self, images: Tensor) -> DetectorOutput:
        return DetectorOutput(teacher=[images], students={})

    def anomaly_map_from_output(self, output: DetectorOutput, image_size) -> Tensor:
        return self.scale * (self.offset + output.teacher[0].abs().mean(1, keepdim=True))


def _strategy(detector, task: int, train: Tensor) -> SimpleNamespace:
    dataset = _Dataset(train)
    return SimpleNamespace(
        detector=detector, eval_mb_size=4, device="cpu", _autocast=contextlib.nullcontext,
        experience=SimpleNamespace(current_experience=task, dataset=dataset),
        adapted_dataset=dataset)


def _images(rng: np.random.Generator, n: int, defect: bool) -> Tensor:
    x = rng.normal(0.0, 0.1, size=(n, 3, 16, 16))
    if defect:
        x[:, :, 4:8, 4:8] += 1.0  # a bright square: well separated within one expert
    return torch.tensor(x, dtype=torch.float32)


def test_holdout_split_is_seeded_disjoint_and_refuses_an_empty_training_set() -> None:
    keep, held = holdout_split(10, 0.2, seed=0, task=3)
    assert len(held) == 2 and sorted(keep + held) == list(range(10))
    assert holdout_split(10, 0.2, seed=0, task=3) == (keep, held)
    assert holdout_split(10, 0.2, seed=1, task=3) != (keep, held)
    assert holdout_split(4, 0.01, 0, 0)[1] != []  # at least one image held out
    with pytest.raises(StrategiesError, match=r"calibration_holdout 0\.9 holds out 1 of task 0"):
        holdout_split(1, 0.9, 0, 0)


def test_statistics_zscore_and_quantile() -> None:
    maps = [torch.arange(100, dtype=torch.float32).reshape(1, 1, 10, 10)]
    z = map_statistics("zscore", maps, 0)
    assert z.location == pytest.approx(49.5) and z.scale == pytest.approx(np.std(np.arange(100)))
    q = map_statistics("quantile", maps, 0)
    assert q.location == pytest.approx(49.5)
    assert q.scale == pytest.approx(np.quantile(np.arange(100), 0.99) - 49.5)
    with pytest.raises(StrategiesError, match="constant"):
        map_statistics("zscore", [torch.ones(1, 1, 4, 4)], 2)


def test_split_trains_on_the_kept_images_and_measures_on_the_held_out_ones() -> None:
    train = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1).expand(10, 3, 2, 2)
    strategy = _strategy(_ScaledDetector(1.0, offset=0.0), task=0, train=train.clone())
    calibration = HoldoutCalibration("zscore", 0.2, seed=0)
    calibration.split(strategy)
    keep, held = holdout_split(10, 0.2, 0, 0)
    assert strategy.adapted_dataset.indices == keep
    stats = calibration.measure(strategy)
    values = train[held, 0, 0, 0]  # each image's map is its constant value
    assert stats.location == pytest.approx(float(values.mean()))
    assert calibration.stats == [stats]


@pytest.mark.parametrize("kind", ["zscore", "quantile"])
def test_experts_a_constant_factor_apart_pool_better_once_calibrated(kind) -> None:
    """Each expert separates its own task perfectly, but expert 1's maps are 5x expert 0's:
    raw, task 1's good images outrank task 0's defects; calibrated, every defect outranks
    every good image."""
    rng = np.random.default_rng(0)
    scores, raw, labels = {}, {}, {}
    for task, scale in enumerate((1.0, 5.0)):
        plugin = CalibrationPlugin(HoldoutCalibration(kind, 0.5, seed=0))
        strategy = _strategy(_ScaledDetector(scale), task, _images(rng, 8, defect=False))
        plugin.after_train_dataset_adaptation(strategy)
        plugin.after_training_exp(strategy)
        test = torch.cat([_images(rng, 6, False), _images(rng, 6, True)])
        out = plugin.score_batch(strategy, test)
        scores[task] = strategy.detector.image_scores(out.anomaly_map).numpy()
        raw[task] = out.uncalibrated_image_score.numpy()
        labels[task] = np.repeat([0, 1], 6)
    before = pooled_image_metrics(raw, labels, 1)["image_auroc"]
    after = pooled_image_metrics(scores, labels, 1)["image_auroc"]
    assert before < 0.8
    assert after == 1.0
