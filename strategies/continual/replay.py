"""Experience replay (Rolnick et al., NeurIPS 2019; Chaudhry et al., "On Tiny Episodic
Memories in Continual Learning", 2019) with a buffer drawn from a per-task seed.

The buffer is balanced by category (:class:`CategoryBalancedBuffer`, Avalanche's
``ExperienceBalancedBuffer`` with one group per category instead of one per experience): after
tasks holding c categories in all, each category keeps ``buffer_size / c`` of its training
images, as index views, no copies. With one category per task this is exactly the experience
balanced buffer (the same groups, the same draws); with tasks of several categories
(``data.tasks``) a task of ten categories does not get ten times less memory per category
than a task of one. The draw after task ``step`` uses the generator seed :func:`replay_seed`, so a
resumed run rebuilds the same buffer without storing images.

How a training step is composed, ``B = train.batch_size``:

- ``mode="equal_compute"`` (default): every step holds ``B`` images, ``m = round(B *
  memory_fraction)`` of them (at least 1, at most ``B - 1``) from the buffer and ``B - m`` from
  the current task, and an epoch
  has as many steps as naive fine-tuning has (``ceil(N / B)`` for ``N`` training images of the
  task; the last step, like naive's, holds ``N - (ceil(N/B) - 1) B`` images, split by the same
  fraction). Replay thus sees exactly as many images and takes exactly as many optimizer steps
  as naive, EWC or SI at the same ``train.batch_size``; the price is that an epoch shows each
  new image ``1 - memory_fraction`` times on average. New and memory images are drawn by
  cycling through shuffled permutations (each image once before any repeats; the new-image
  cycle continues over epochs).
- ``mode="additive"``: Avalanche's ``ReplayDataLoader``: each step holds ``B`` new images plus
  ``batch_size_mem`` memory images (``None``: ``B``, Avalanche's default, the behaviour before
  equal compute existed), and an epoch is one pass over the new images.

During the first task the buffer is empty and both modes train like naive fine-tuning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import (
    BalancedExemplarsBuffer,
    ReservoirSamplingBuffer,
)
from torch.utils.data import DataLoader, Sampler

REPLAY_MODES = ("equal_compute", "additive")


def replay_seed(seed: int, step: int) -> int:
    """The seed of the replay buffer's draw after training task ``step``."""
    return (seed * 1_000_003 + step * 7919 + 17) % (2**31 - 1)


def memory_count(batch: int, fraction: float) -> int:
    """Memory images in a step of ``batch`` images: ``round(batch * fraction)`` (halves up),
    kept within ``1 .. batch - 1`` so that a step of two or more images always holds both new
    and memory images; a step of one image holds a new one."""
    if batch < 2:
        return 0
    return min(batch - 1, max(1, math.floor(batch * fraction + 0.5)))


class _Cycle:
    """Indices ``offset .. offset+n-1`` in shuffled permutations, one after the other."""

    def __init__(self, n: int, offset: int, generator: torch.Generator) -> None:
        self.n, self.offset, self.generator = n, offset, generator
        self.pending: list[int] = []

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not self.pending:
                self.pending = (torch.randperm(self.n, generator=self.generator)
                                + self.offset).tolist()
            need = k - len(out)
            out += self.pending[:need]
            self.pending = self.pending[need:]
        return out


class EqualComputeBatchSampler(Sampler[list[int]]):
    """Batches over ``ConcatDataset([new, memory])``: naive's step count and step sizes, each
    step ``round(size * memory_fraction)`` memory indices and the rest new ones."""

    def __init__(self, n_new: int, n_memory: int, batch_size: int, memory_fraction: float,
                 generator: torch.Generator) -> None:
        if n_new < 1 or n_memory < 1:
            raise ValueError(f"equal-compute replay needs new and memory images, got {n_new} "
                             f"new and {n_memory} memory images")
        self.n_new, self.batch_size, self.fraction = n_new, batch_size, memory_fraction
        self.new = _Cycle(n_new, 0, generator)
        self.memory = _Cycle(n_memory, n_new, generator)

    def step_sizes(self) -> list[int]:
        """Naive fine-tuning's batch sizes over one epoch (``drop_last=False``)."""
        full, rest = divmod(self.n_new, self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])

    def __len__(self) -> int:
        return len(self.step_sizes())

    def __iter__(self) -> Iterator[list[int]]:
        for size in self.step_sizes():
            m = memory_count(size, self.fraction)
            yield self.new.take(size - m) + self.memory.take(m)


class CategoryBalancedBuffer(BalancedExemplarsBuffer[ReservoirSamplingBuffer]):
    """A rehearsal buffer with one reservoir-sampled group per category, the memory split
    equally over the categories seen (``adaptive_size``). An experience of one category is
    added exactly as ``ExperienceBalancedBuffer.post_adapt`` adds it (one draw over the whole
    experience); one of several categories gets a group per category, drawn in order of first
    appearance. Written here because Avalanche groups by experience, task or class label only,
    and a category is none of these (the class label is good/defective)."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size, adaptive_size=True)

    def post_adapt(self, agent, exp) -> None:
        categories = getattr(exp, "categories", None) or [None]
        if len(categories) < 2:
            parts = [exp.dataset]
        else:
            labels = [str(c) for c in exp.dataset.category]
            parts = [exp.dataset.subset([i for i, c in enumerate(labels) if c == category])
                     for category in dict.fromkeys(labels)]
        for part in parts:
            group = len(self.buffer_groups)
            lens = self.get_group_lengths(group + 1)
            new_buffer = ReservoirSamplingBuffer(lens[-1])
            new_buffer.update_from_dataset(part)
            self.buffer_groups[group] = new_buffer
            for length, buffer in zip(lens, self.buffer_groups.values(), strict=True):
                buffer.resize(agent, length)


class SeededReplayPlugin(ReplayPlugin):
    """Avalanche replay with an experience-balanced buffer drawn from a per-task seed, and the
    batch composition of ``mode`` (see the module docstring)."""

    def __init__(self, mem_size: int, seed: int, mode: str = "equal_compute",
                 memory_fraction: float = 0.5, batch_size_mem: int | None = None) -> None:
        if mode not in REPLAY_MODES:
            raise ValueError(f"unknown replay mode {mode!r}; use one of {REPLAY_MODES}")
        if not 0.0 < memory_fraction < 1.0:
            raise ValueError(f"replay memory_fraction must be in (0, 1), got {memory_fraction}")
        super().__init__(
            mem_size=mem_size,
            batch_size_mem=batch_size_mem,
            storage_policy=CategoryBalancedBuffer(max_size=mem_size),
        )
        self.seed = seed
        self.mode = mode
        self.memory_fraction = float(memory_fraction)

    def add_experience(self, experience, step: int) -> None:
        """Add one experience's training images to the buffer (also used when resuming)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(replay_seed(self.seed, step))
            self.storage_policy.post_adapt(None, experience)

    def before_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True,
                            drop_last: bool = False, **kwargs) -> None:
        if self.mode == "additive":
            super().before_training_exp(strategy, num_workers=num_workers, shuffle=shuffle,
                                        drop_last=drop_last, **kwargs)
            return
        memory = self.storage_policy.buffer
        if len(memory) == 0:
            return  # first task: naive's loader
        if strategy.train_mb_size < 2:
            raise ValueError(
                f"equal-compute replay needs train.batch_size >= 2 to hold new and memory images "
                f"in one step (got {strategy.train_mb_size}); raise train.batch_size or set "
                f"strategy.replay.mode=additive")
        data = strategy.adapted_dataset
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        sampler = EqualComputeBatchSampler(len(data), len(memory), strategy.train_mb_size,
                                           self.memory_fraction, generator)
        strategy.dataloader = DataLoader(data.concat(memory), batch_sampler=sampler,
                                         num_workers=num_workers, collate_fn=data.collate_fn)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.add_experience(strategy.experience, strategy.clock.train_exp_counter)

    def restore_from_stream(self, experiences) -> None:
        """On resume: re-draw the buffer from the training experiences of the steps done."""
        for step, experience in enumerate(experiences):
            self.add_experience(experience, step)

    def buffer_size(self) -> int:
        return len(self.storage_policy.buffer)
