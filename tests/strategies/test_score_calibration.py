"""Per-expert score calibration (strategies.continual.calibration): the held-out split, the
cross-fit folds, the statistics, and two experts whose maps differ by a constant factor pooling
better once calibrated."""

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
    crossfit_folds,
    fold_epochs,
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


# ---- cross-fitting (calibration_folds) and image-score statistics ---------------------------

def test_crossfit_folds_partition_every_image_once_seeded_and_refuse_impossible_k() -> None:
    parts = crossfit_folds(10, 3, seed=0, task=2)
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    assert sorted(i for p in parts for i in p) == list(range(10))
    assert crossfit_folds(10, 3, seed=0, task=2) == parts
    assert crossfit_folds(10, 3, seed=0, task=3) != parts
    with pytest.raises(StrategiesError, match=r"calibration_folds 11 for task 0's 10"):
        crossfit_folds(10, 11, 0, 0)
    with pytest.raises(StrategiesError, match="calibration_folds 1"):
        crossfit_folds(10, 1, 0, 0)


def test_fold_copies_take_as_many_optimizer_steps_as_the_expert() -> None:
    # 10 images, batch 8: 2 batches per epoch, 20 steps in 10 epochs; a fold of 8: 1 batch
    assert fold_epochs(10, n_full=10, n_fold=8, batch_size=8) == 20
    assert fold_epochs(10, n_full=10, n_fold=9, batch_size=8) == 10  # 8 + 1: still 2 batches
    assert fold_epochs(3, n_full=100, n_fold=80, batch_size=8) == 4  # 39 steps -> 4 x 10
    assert fold_epochs(1, n_full=4, n_fold=2, batch_size=8) == 1


def test_image_zscore_uses_the_mean_and_sample_std_of_the_image_scores() -> None:
    maps = [torch.zeros(2, 1, 4, 4), torch.zeros(1, 1, 4, 4)]
    for m, top in zip((maps[0][0], maps[0][1], maps[1][0]), (1.0, 2.0, 6.0), strict=True):
        m[0, 1, 2] = top  # each map's maximum: its image score
    stats = map_statistics("image_zscore", maps, 0)
    assert stats.location == pytest.approx(3.0)
    assert stats.scale == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))
    halved = map_statistics("image_zscore", maps, 0, image_scores=lambda m: m.amax((1, 2, 3)) / 2)
    assert halved.location == pytest.approx(1.5)  # the detector's own image score is used
    with pytest.raises(StrategiesError, match="calibration_folds >= 2"):
        map_statistics("image_zscore", [maps[1]], 4)
    with pytest.raises(StrategiesError, match="needs calibration_folds >= 2"):
        HoldoutCalibration("image_zscore", 0.1, seed=0, folds=0)


def test_each_fold_copy_maps_only_images_it_was_not_trained_on(monkeypatch) -> None:
    """The bookkeeping of the cross-fit: fold k's copy trains on the other folds, starting from
    the task's starting state, maps fold k, and the expert is restored afterwards."""
    import strategies.continual.calibration as calibration_module

    train = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1).expand(10, 3, 2, 2)
    detector = _ScaledDetector(1.0, offset=0.0)
    detector.register_buffer("state", torch.tensor(0.0))  # 0: start, 1: expert, 2: fold copy
    strategy = _strategy(detector, task=1, train=train.clone())
    calibration = HoldoutCalibration("image_zscore", 0.1, seed=0, folds=3)
    calibration.remember_start(strategy)
    calibration.split(strategy)
    assert len(strategy.adapted_dataset) == 10  # the expert trains on every image
    detector.state.fill_(1.0)  # the expert, trained
    trained_on: list[list[int]] = []

    def fake_train(strategy, dataset, n_full) -> None:
        assert float(strategy.detector.state) == 0.0  # each copy starts where the expert did
        assert n_full == 10
        trained_on.append(list(dataset.indices))
        strategy.detector.state.fill_(2.0)

    mapped: list[list[int]] = []
    real_maps = HoldoutCalibration._maps

    def spy_maps(self, strategy, dataset):
        mapped.append(list(dataset.indices))
        return real_maps(self, strategy, dataset)

    monkeypatch.setattr(calibration_module, "train_fold_copy", fake_train)
    monkeypatch.setattr(HoldoutCalibration, "_maps", spy_maps)
    stats = calibration.measure(strategy)
    assert float(detector.state) == 1.0  # the expert is back
    assert sorted(i for m in mapped for i in m) == list(range(10))
    for keep, held in zip(trained_on, mapped, strict=True):
        assert not set(keep) & set(held) and sorted(keep + held) == list(range(10))
    values = np.arange(10.0)  # every image's map is its value; each is mapped once
    assert stats.location == pytest.approx(values.mean())
    assert stats.scale == pytest.approx(values.std(ddof=1))
