"""One detector trained on one category with the loop every run uses, and scored.

``cl-bench train-one`` and the tests that train a detector on real images call
:func:`train_on_dataset` instead of a loop of their own: the detector is trained by
:class:`strategies.training.avalanche_strategy.DistillationStrategy` (the optimizer and the
learning-rate schedule of ``train``, the schedule stepped per iteration, the detector calibrated on
its training images after the task) on a one-experience Avalanche stream, and scored with
:mod:`cl_bench.metrics`. With the seeding of :func:`seed_for_build` and
:func:`seed_for_training`, the detector equals the one a one-task naive run of the same seed has
after its step 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from cl_bench.config import TrainSettings
from cl_bench.metrics import image_auroc, pixel_auroc
from cl_bench.seeding import seed_everything, step_seed
from strategies.detectors.base import AnomalyDetector
from strategies.training.avalanche_strategy import DistillationStrategy
from strategies.training.optimizers import build_optimizer
from strategies.training.schedules import Schedule


def optimizer_for(settings: TrainSettings, params: Iterable[torch.nn.Parameter]
                  ) -> torch.optim.Optimizer:
    """The optimizer ``settings.optimizer`` describes, over ``params``."""
    opt = settings.optimizer
    return build_optimizer(params, opt.name, lr=opt.lr, betas=opt.betas, momentum=opt.momentum,
                           weight_decay=opt.weight_decay, fused=opt.fused)


def schedule_for(settings: TrainSettings) -> Schedule:
    """The learning-rate schedule ``settings.schedule`` describes."""
    config = settings.schedule
    return Schedule(config.name, config.warmup_steps, config.warmup_fraction,
                    config.min_lr_factor)


def seed_for_build(seed: int) -> None:
    """Seed every generator as a run does before it builds a detector (step -1)."""
    seed_everything(step_seed(seed, -1))


def seed_for_training(seed: int) -> None:
    """Seed every generator as a run does before it trains its first task (step 0)."""
    seed_everything(step_seed(seed, 0))


def train_on_dataset(detector: AnomalyDetector, dataset: Any, settings: TrainSettings,
                     device: str | torch.device) -> DistillationStrategy:
    """Train ``detector`` on the images of ``dataset`` (an :class:`~cl_bench.data.MVTecDataset`)
    for ``settings.epochs`` epochs with :class:`DistillationStrategy`; returns the strategy (its
    ``epoch_loss_parts`` hold the last epoch's mean loss parts). The detector ends in eval
    mode, calibrated on ``dataset``."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    from cl_bench.data.stream import to_avalanche_dataset

    stream = benchmark_from_datasets(train=[to_avalanche_dataset([dataset])]).train_stream
    optimizer = (None if detector.learns_without_gradients  # one fit pass, as in a run
                 else optimizer_for(settings, detector.parameters()))
    strategy = DistillationStrategy(
        model=detector, optimizer=optimizer,
        train_mb_size=settings.batch_size, train_epochs=settings.epochs,
        eval_mb_size=settings.batch_size, device=device,
        reset_optimizer=settings.reset_optimizer, lr_schedule=schedule_for(settings))
    strategy.train(stream[0])
    detector.eval()
    return strategy


def image_and_pixel_auroc(scores: np.ndarray, maps: np.ndarray, labels: np.ndarray,
                          masks: np.ndarray) -> tuple[float, float]:
    """(image AUROC, pixel AUROC) of :mod:`cl_bench.metrics`; NaN (with a warning) where one
    class is absent."""
    return image_auroc(scores, labels), pixel_auroc(maps, (masks > 0.5).astype(np.uint8))
