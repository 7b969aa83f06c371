"""Learning-rate schedules of one task, built from ``torch.optim.lr_scheduler``.

A schedule covers the ``T = epochs x iterations per epoch`` optimizer steps of one task; the
strategy builds a fresh one at the start of every task (the learning rate restarts from the
configured ``lr``) and steps it after every optimizer step. With ``W`` warm-up steps
(``warmup_steps``, or ``round(warmup_fraction * T)``, at most ``T``) and base rate ``lr``, the
rate used by step ``s = 0 .. T-1`` is ``lr * f(s)``:

- ``constant``: ``f(s) = 1`` (no scheduler is built at all: the behaviour of runs made before
  schedules existed, bit for bit);
- ``warmup_linear``: ``f(s) = (s + 1) / W`` for ``s < W`` (linear warm-up, ``torch LinearLR``),
  then ``f(s) = (T - s) / (T - W)`` (linear decay towards 0, reached after the last step;
  ``LinearLR`` from 1 to 0 over ``T - W`` steps); the schedule of BERT-style training and of
  the seed paper's README ("warm-up and linear decay");
- ``cosine``: the same warm-up, then ``f(s) = m + (1 - m) (1 + cos(pi (s - W) / (T - W))) / 2``
  with ``m = min_lr_factor`` (``CosineAnnealingLR``, ``eta_min = m * lr``).

The two phases are chained with ``SequentialLR``. A scheduler's ``state_dict()`` holds plain
numbers, so it goes into a checkpoint as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim import lr_scheduler

SCHEDULES = ("constant", "warmup_linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    """What the ``train.schedule`` section says (see :class:`cl_bench.config.ScheduleConfig`)."""

    name: str = "constant"
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    min_lr_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.name!r}; use one of {', '.join(SCHEDULES)}")

    def warmup(self, total_steps: int) -> int:
        """``W``: the warm-up steps within a task of ``total_steps`` steps."""
        steps = self.warmup_steps or round(self.warmup_fraction * total_steps)
        return min(int(steps), int(total_steps))


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule,
                    total_steps: int) -> lr_scheduler.LRScheduler | None:
    """A scheduler for one task of ``total_steps`` steps, or None for ``constant``.

    Every parameter group's ``lr`` must hold the base rate when this is called (the strategy
    restores it at every task)."""
    if schedule.name == "constant":
        return None
    total = max(int(total_steps), 1)
    warm = schedule.warmup(total)
    main_steps = max(total - warm, 1)
    if schedule.name == "warmup_linear":
        main = lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                                     total_iters=main_steps)
    else:
        base = [group["lr"] for group in optimizer.param_groups]
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_steps,
                                              eta_min=schedule.min_lr_factor * min(base))
    if warm < 2:  # f(0) = 1 / W = 1: no warm-up to do
        return main
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warm, end_factor=1.0,
                                   total_iters=warm - 1)
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warm])
