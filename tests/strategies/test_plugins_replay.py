"""Replay's batch composition: memory images per step, drawn only from earlier tasks' training
images, naive's step count (equal compute) or the additive batch of Avalanche."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.data import build_benchmark, ensure_synthetic
from strategies.continual.replay import EqualComputeBatchSampler, SeededReplayPlugin, memory_count
from strategies.detectors import build_detector
from strategies.training.avalanche_strategy import DistillationStrategy

N_TRAIN, BATCH, BUFFER = 7, 4, 4


class BatchRecorder(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[int, list[torch.Tensor]] = {}

    def before_training_iteration(self, strategy, **kwargs) -> None:
        task = strategy.clock.train_exp_counter
        self.batches.setdefault(task, []).append(strategy.mb_x.detach().clone())


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = ensure_synthetic(tmp_path_factory.mktemp("synth"), n_categories=3, n_train=N_TRAIN,
                            n_test=2, size=32)
    return build_benchmark(root, image_size=32)


def train_recording(tasks, mode: str, epochs: int) -> tuple[BatchRecorder, list[dict]]:
    torch.manual_seed(0)
    detector = build_detector("stpm", weights="none")
    recorder = BatchRecorder()
    replay = SeededReplayPlugin(BUFFER, seed=0, mode=mode, memory_fraction=0.5)
    strategy = DistillationStrategy(
        model=detector, optimizer=torch.optim.SGD(detector.parameters(), lr=1e-3),
        train_mb_size=BATCH, train_epochs=epochs, eval_mb_size=8, plugins=[replay, recorder])
    for experience in tasks.benchmark.train_stream:
        strategy.train(experience)
    # which task each training image belongs to, by its exact pixels
    owners = [{img[0].numpy().tobytes() for img in exp.dataset}
              for exp in tasks.benchmark.train_stream]
    return recorder, owners


def task_of(image: torch.Tensor, owners: list[set]) -> int:
    found = [t for t, images in enumerate(owners) if image.numpy().tobytes() in images]
    assert len(found) == 1
    return found[0]


def test_equal_compute_batches(tasks) -> None:
    recorder, owners = train_recording(tasks, "equal_compute", epochs=3)
    steps = math.ceil(N_TRAIN / BATCH) * 3  # naive's steps: 3 epochs
    sizes = [BATCH, N_TRAIN - BATCH] * 3
    for task, batches in recorder.batches.items():
        assert len(batches) == steps
        assert [len(b) for b in batches] == sizes  # never more images than naive
        seen_new = set()
        for batch in batches:
            origin = [task_of(img, owners) for img in batch]
            m = 0 if task == 0 else memory_count(len(batch), 0.5)
            assert sum(t != task for t in origin) == m
            assert all(t < task for t in origin if t != task)  # memory: earlier tasks only
            seen_new |= {img.numpy().tobytes()
                         for img, t in zip(batch, origin, strict=True) if t == task}
        assert len(seen_new) == N_TRAIN  # 3 x 3 new images per epoch: the cycle reaches all 7
    memory_tasks = {task_of(img, owners) for batch in recorder.batches[2] for img in batch}
    assert memory_tasks == {0, 1, 2}  # the buffer holds both earlier tasks


def test_additive_batches_keep_the_old_behaviour(tasks) -> None:
    recorder, owners = train_recording(tasks, "additive", epochs=1)
    assert [len(b) for b in recorder.batches[0]] == [BATCH, N_TRAIN - BATCH]
    for task in (1, 2):
        for batch in recorder.batches[task]:
            origin = [task_of(img, owners) for img in batch]
            assert sum(t < task for t in origin) == BATCH  # a memory batch as large as B
            assert all(t <= task for t in origin)


def test_sampler_fraction_and_cycles() -> None:
    sampler = EqualComputeBatchSampler(10, 3, 8, 0.25, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert [len(b) for b in batches] == [8, 2]
    assert [sum(i >= 10 for i in b) for b in batches] == [2, 1]  # round(8/4), round(0.5) = 1
    with pytest.raises(ValueError, match="memory"):
        EqualComputeBatchSampler(10, 0, 8, 0.5, torch.Generator())
    # never a step without new or without memory images (a silent no-op otherwise)
    assert [memory_count(b, 0.05) for b in (1, 2, 8)] == [0, 1, 1]
    assert [memory_count(b, 0.95) for b in (1, 2, 8)] == [0, 1, 7]
