"""Progress of training and evaluation, as an Avalanche plugin.

Modes (``cl-bench run --progress``):

- ``bar``: tqdm bars (epochs of a task, tasks of an evaluation), redrawn in place on stderr;
- ``lines``: plain lines for logs, CI and cluster jobs: one after an epoch when at least
  ``interval_s`` seconds have passed since the previous line (so one per epoch or one every
  ``interval_s`` seconds, whichever is rarer) and always after a task's last epoch, each with the
  task, the epoch, the epoch's mean loss (and its parts) and images per second; and one line
  when each evaluation starts (the untrained model's included);
- ``off``: nothing besides the runner's one line per completed step;
- ``auto`` (the default): ``bar`` on an interactive terminal (stderr is a TTY), else ``lines``.
"""

from __future__ import annotations

import sys
import time

from avalanche.training.plugins import SupervisedPlugin
from tqdm.auto import tqdm

from cl_bench.progress_settings import (
    DEFAULT_INTERVAL_S,
    MODES,
    Progress,
    resolve_progress,
)

__all__ = ["DEFAULT_INTERVAL_S", "MODES", "Progress", "ProgressPlugin", "resolve_progress"]

class ProgressPlugin(SupervisedPlugin):
    """Bars or lines for one method/seed cell, labelled ``label`` (e.g. ``stpm seed 0``)."""

    def __init__(self, label: str, enabled: Progress | str | bool | None = None) -> None:
        super().__init__()
        self.label = label
        self.progress = resolve_progress(enabled)
        self.enabled = self.progress.mode == "bar"  # tqdm bars
        self.lines = self.progress.mode == "lines"
        self._bar: tqdm | None = None
        self._trained: int | None = None  # the experience trained last by this strategy
        self._epoch = 0
        self._last_line = 0.0
        self._images = 0  # since the last line
        self._loss_sum = 0.0  # of the current epoch
        self._loss_count = 0

    # ---- tqdm bars ------------------------------------------------------------------------
    def _open(self, total: int | None, desc: str, unit: str) -> None:
        if self.enabled:
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---- names ----------------------------------------------------------------------------
    def _task(self, index: int) -> str:
        names = self.progress.task_names
        if self.progress.joint:
            return "joint (all tasks)"
        if 0 <= index < len(names):
            return f"task {index + 1}/{len(names)} {names[index]!r}"
        return f"task {index + 1}"

    def _say(self, text: str) -> None:
        self.progress.log(f"[{self.label}] {text}")

    # ---- training -------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kwargs) -> None:
        exp = strategy.experience.current_experience
        self._trained = exp
        self._epoch = 0
        self._last_line = time.perf_counter()
        self._images = 0
        self._open(strategy.train_epochs, f"{self.label} train exp {exp}", "epoch")

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._loss_sum, self._loss_count = 0.0, 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if self.lines:
            self._images += len(strategy.mb_x)
            self._loss_sum += float(strategy.loss.detach())
            self._loss_count += 1

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._epoch += 1
        parts = getattr(strategy, "epoch_loss_parts", {})
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in parts.items()})
            self._bar.update(1)
        if not self.lines:
            return
        now = time.perf_counter()
        last_epoch = self._epoch >= strategy.train_epochs
        if now - self._last_line < self.progress.interval_s and not last_epoch:
            return
        rate = self._images / max(now - self._last_line, 1e-9)
        loss = self._loss_sum / max(self._loss_count, 1)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in parts.items())
        self._say(f"train {self._task(self._trained or 0)} epoch {self._epoch}/"
                  f"{strategy.train_epochs}: loss {loss:.4g}" + (f" ({shown})" if shown else "")
                  + f", {rate:.1f} images/s")
        self._last_line, self._images = now, 0

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._close()

    # ---- evaluation -----------------------------------------------------------------------
    def before_eval(self, strategy, **kwargs) -> None:
        stream = strategy.current_eval_stream
        count = len(stream) if hasattr(stream, "__len__") else None
        self._open(count, f"{self.label} eval", "task")
        if self.lines:
            if self._trained is None and strategy.clock.train_exp_counter == 0:
                what = "the untrained model"
            else:
                what = f"after {self._task(self._trained or 0)}"
            try:
                images = sum(len(exp.dataset) for exp in stream)
                size = f" ({images} test images)"
            except TypeError:
                size = ""
            tasks = f"{count} task(s)" if count is not None else "the test stream"
            self._say(f"evaluating {what} on {tasks}{size}")

    def after_eval_exp(self, strategy, **kwargs) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_eval(self, strategy, **kwargs) -> None:
        self._close()
