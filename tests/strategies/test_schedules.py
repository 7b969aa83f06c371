"""Learning-rate schedules: the formulas, restarted at every task, stepped per iteration."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from strategies.training.schedules import Schedule, build_scheduler

BASE_LR = 0.4


def _rates(schedule: Schedule, total: int) -> list[float]:
    """The rate each of ``total`` optimizer steps uses."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=BASE_LR)
    scheduler = build_scheduler(optimizer, schedule, total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return rates


def _warmup_linear(s: int, total: int, warm: int) -> float:
    """f(s) = (s+1)/W during warm-up, then (T-s)/(T-W), written out independently."""
    return BASE_LR * ((s + 1) / warm if s < warm else (total - s) / (total - warm))


def _cosine(s: int, total: int, warm: int, floor: float) -> float:
    if s < warm:
        return BASE_LR * (s + 1) / warm
    progress = (s - warm) / (total - warm)
    return BASE_LR * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize(("schedule", "expected"), [
    (Schedule("constant"), lambda s, T: BASE_LR),
    (Schedule("warmup_linear", warmup_steps=4), lambda s, T: _warmup_linear(s, T, 4)),
    (Schedule("warmup_linear", warmup_fraction=0.25), lambda s, T: _warmup_linear(s, T, 5)),
    (Schedule("warmup_linear"), lambda s, T: _warmup_linear(s, T, 0)),
    (Schedule("cosine"), lambda s, T: _cosine(s, T, 0, 0.0)),
    (Schedule("cosine", warmup_steps=3, min_lr_factor=0.1), lambda s, T: _cosine(s, T, 3, 0.1)),
])
def test_rates_follow_the_formula(schedule: Schedule, expected) -> None:
    total = 20
    rates = _rates(schedule, total)
    assert rates == pytest.approx([expected(s, total) for s in range(total)], abs=1e-12)


def test_constant_builds_no_scheduler() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    assert build_scheduler(optimizer, Schedule("constant"), 10) is None


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        Schedule("step")


# ---- inside the Avalanche strategy ------------------------------------------------------------
class _RateLog(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.rates: list[list[float]] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.rates.append([])

    def before_update(self, strategy, **kwargs) -> None:
        self.rates[-1].append(strategy.optimizer.param_groups[0]["lr"])


@pytest.fixture
def two_tasks(tmp_path):
    from cl_bench.data import build_benchmark, ensure_synthetic

    root = ensure_synthetic(tmp_path, n_categories=2, n_train=6, n_test=4, size=32)
    return build_benchmark(root, image_size=32)


def _strategy(schedule: Schedule, reset_optimizer: bool, log: _RateLog, epochs: int = 2):
    from strategies.detectors import build_detector
    from strategies.training.avalanche_strategy import DistillationStrategy
    from strategies.training.optimizers import build_optimizer

    torch.manual_seed(0)
    detector = build_detector("stpm", backbone="efficientnet_lite0", weights="none")
    optimizer = build_optimizer(detector.trainable_parameters(), "sgd", lr=BASE_LR,
                                momentum=0.9, fused=False)
    return DistillationStrategy(model=detector, optimizer=optimizer, train_mb_size=4,
                                train_epochs=epochs, eval_mb_size=8, plugins=[log],
                                reset_optimizer=reset_optimizer, lr_schedule=schedule)


@pytest.mark.parametrize("reset_optimizer", [True, False])
def test_strategy_restarts_the_schedule_at_every_task(two_tasks, reset_optimizer) -> None:
    """6 images, batch 4 -> 2 iterations per epoch, 2 epochs: T = 4 steps per task, each task
    from the configured rate again (also when the optimizer state is kept)."""
    log = _RateLog()
    strategy = _strategy(Schedule("warmup_linear", warmup_steps=2), reset_optimizer, log)
    for experience in two_tasks.benchmark.train_stream:
        strategy.train(experience)
    expected = [_warmup_linear(s, 4, 2) for s in range(4)]
    assert len(log.rates) == 2
    for rates in log.rates:
        assert rates == pytest.approx(expected, abs=1e-12)
    assert strategy.lr_scheduler.state_dict()["last_epoch"] == 4


def test_constant_schedule_keeps_the_rate(two_tasks) -> None:
    log = _RateLog()
    strategy = _strategy(Schedule(), True, log)
    for experience in two_tasks.benchmark.train_stream:
        strategy.train(experience)
    assert strategy.lr_scheduler is None
    assert log.rates == [[BASE_LR] * 4, [BASE_LR] * 4]
