"""Averaged Gradient Episodic Memory (Chaudhry et al., "Efficient Lifelong Learning with
A-GEM", ICLR 2019) as Avalanche's ``AGEMPlugin``.

A-GEM needs no class targets here: the reference gradient ``g_ref`` is the gradient of the
detector's own loss (``strategy._criterion(model(x_mem), y)``, which ignores ``y``) on a batch
drawn from the episodic memory of the earlier tasks, taken before every training step. When the
current gradient ``g`` points against it (``g . g_ref < 0``), the step uses the projection
``g - (g . g_ref / g_ref . g_ref) g_ref`` instead, so the loss on the memory does not rise to
first order. The frozen teacher is hidden from ``parameters()`` and never projected.

Two changes to Avalanche's plugin, both for reproducible and resumable runs:

- the ``patterns_per_experience`` images kept of each task are drawn with a generator seeded
  from (run seed, task) (:func:`~strategies.continual.replay.replay_seed`), not from Python's global
  ``random``; a resumed run re-draws the same memory from the tasks done;
- the memory batch holds ``max(1, sample_size // tasks in memory)`` images of each earlier task
  (Avalanche's ``sample_size // tasks`` becomes 0, an error, once the tasks outnumber
  ``sample_size``); ``sample_size`` should be a multiple of the number of tasks for an exact
  total.

The memory forward pass runs the students in train mode, as Avalanche's plugin does (so
``g_ref`` is the gradient of the loss the students train with, BatchNorm normalising with the
memory batch's statistics), but the BatchNorm running statistics (``running_mean``,
``running_var``, ``num_batches_tracked``) are saved before it and restored after it: A-GEM's
memory only constrains the gradient (Chaudhry et al. 2019, Eq. 10-11); letting its images move
the running statistics would be a hidden replay that the method does not have.
"""

from __future__ import annotations

import torch
from avalanche.benchmarks.utils.data_loader import GroupBalancedInfiniteDataLoader
from avalanche.training.plugins import AGEMPlugin
from torch import Tensor, nn

from strategies.continual.replay import replay_seed


class SeededAGEMPlugin(AGEMPlugin):
    """Avalanche's ``AGEMPlugin`` with a seeded memory draw (see the module docstring)."""

    def __init__(self, patterns_per_experience: int, sample_size: int, seed: int) -> None:
        super().__init__(patterns_per_experience, sample_size)
        self.seed = seed

    def before_training_iteration(self, strategy, **kwargs) -> None:
        """Avalanche's reference-gradient pass, with the BatchNorm statistics restored after."""
        saved = batchnorm_statistics(strategy.model)
        try:
            super().before_training_iteration(strategy, **kwargs)
        finally:
            restore_batchnorm_statistics(strategy.model, saved)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.add_experience(strategy.experience, strategy.clock.train_exp_counter)

    def add_experience(self, experience, step: int) -> None:
        """Keep ``patterns_per_experience`` training images of task ``step`` (seeded draw)."""
        dataset = experience.dataset
        if len(dataset) > self.patterns_per_experience:
            generator = torch.Generator().manual_seed(replay_seed(self.seed, step))
            order = torch.randperm(len(dataset), generator=generator)
            dataset = dataset.subset(order[: self.patterns_per_experience].tolist())
        self.buffers.append(dataset)
        self.buffer_dataloader = GroupBalancedInfiniteDataLoader(
            self.buffers, batch_size=max(1, self.sample_size // len(self.buffers)),
            num_workers=0, pin_memory=False, persistent_workers=False)
        self.buffer_dliter = iter(self.buffer_dataloader)

    def restore_from_stream(self, experiences) -> None:
        """On resume: re-draw the memory from the training experiences of the steps done."""
        for step, experience in enumerate(experiences):
            self.add_experience(experience, step)


def batchnorm_statistics(model: nn.Module) -> dict[str, Tensor]:
    """Copies of the running statistics of every BatchNorm layer of ``model`` (by buffer name)."""
    return {f"{name}.{key}": buffer.detach().clone()
            for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
            for key, buffer in module.named_buffers(recurse=False) if buffer is not None}


@torch.no_grad()
def restore_batchnorm_statistics(model: nn.Module, saved: dict[str, Tensor]) -> None:
    """Write the copies of :func:`batchnorm_statistics` back into ``model``'s buffers."""
    buffers = dict(model.named_buffers())
    for name, value in saved.items():
        buffers[name].copy_(value)
