"""tqdm progress bars for training epochs and evaluations, as an Avalanche plugin.

Bars are shown on an interactive terminal only (``progress=None`` decides by ``isatty``), so
logs of batch jobs hold the one-line-per-task summaries and nothing else.
"""

from __future__ import annotations

import sys

from avalanche.training.plugins import SupervisedPlugin
from tqdm.auto import tqdm


class ProgressPlugin(SupervisedPlugin):
    def __init__(self, label: str, enabled: bool | None = None) -> None:
        super().__init__()
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: tqdm | None = None

    def _open(self, total: int | None, desc: str, unit: str) -> None:
        if self.enabled:
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        exp = strategy.experience.current_experience
        self._open(strategy.train_epochs, f"{self.label} train exp {exp}", "epoch")

    def after_training_epoch(self, strategy, **kwargs) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in strategy.epoch_loss_parts.items()})
            self._bar.update(1)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self._close()

    def before_eval(self, strategy, **kwargs) -> None:
        stream = strategy.current_eval_stream
        self._open(len(stream) if hasattr(stream, "__len__") else None, f"{self.label} eval",
                   "task")

    def after_eval_exp(self, strategy, **kwargs) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_eval(self, strategy, **kwargs) -> None:
        self._close()
