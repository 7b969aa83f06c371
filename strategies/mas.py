"""Memory Aware Synapses (Aljundi et al., ECCV 2018) as Avalanche's ``MASPlugin``.

MAS needs no labels: the importance of parameter ``theta_k`` is the mean, over a task's training
images ``x``, of ``|d ||f(x)||_2^2 / d theta_k|``, where ``f`` is the function the model learns.
For a distillation detector ``f(x)`` is the students' features: every feature level of every
student branch, flattened and concatenated per image (the frozen teacher is hidden from
``parameters()``, so it is never regularised). After task t the importances are blended,
``Omega <- alpha * Omega + (1 - alpha) * Omega_t`` (Avalanche's online update), the weights
``theta*`` saved, and while training every later task the loss gains
``mas_lambda * sum_k Omega_k (theta_k - theta*_k)^2``.

The importance pass runs once after each task (after the detector's calibration) over the
task's training images in order, with the detector in **eval mode**, as Avalanche's EWC does:
Avalanche's ``MASPlugin`` asks for train mode, which would compute the importances with batch
statistics and overwrite the BatchNorm running statistics that the trained students (and their
calibration) use. :class:`ResumableMASPlugin` adds ``state_dict`` / ``load_state_dict`` for
resumed runs.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from avalanche.training.plugins import MASPlugin
from torch import Tensor, nn

from strategies.plugin_state import decode_state, encode_state


class StudentOutputs:
    """What MAS sees of a detector: ``named_parameters``, ``train`` and a forward that returns
    the students' features of a batch as one ``(B, D)`` tensor (D: all levels and branches).

    ``train()`` puts the detector in eval mode: the importance pass must not change the trained
    model (module docstring)."""

    def __init__(self, detector: nn.Module) -> None:
        self.detector = detector

    def named_parameters(self, *args, **kwargs):
        return self.detector.named_parameters(*args, **kwargs)

    def parameters(self, *args, **kwargs):
        return self.detector.parameters(*args, **kwargs)

    def train(self, mode: bool = True) -> StudentOutputs:
        self.detector.eval()
        return self

    def __call__(self, images: Tensor) -> Tensor:
        output = self.detector(images)
        return torch.cat([level.flatten(1) for levels in output.students.values()
                          for level in levels], dim=1)


class ResumableMASPlugin(MASPlugin):
    """Avalanche's ``MASPlugin`` on the students' features, with saveable state."""

    def _get_importance(self, strategy) -> dict:
        view = SimpleNamespace(model=StudentOutputs(strategy.model),
                               experience=strategy.experience, optimizer=strategy.optimizer,
                               train_mb_size=strategy.train_mb_size, device=strategy.device)
        training = strategy.model.training
        try:
            return super()._get_importance(view)
        finally:
            strategy.model.train(training)

    def state_dict(self) -> dict[str, Any]:
        return {"params": encode_state(self.params),
                "importance": encode_state(self.importance)}

    def load_state_dict(self, state: dict[str, Any], strategy) -> None:
        device = torch.device(strategy.device)
        self.params = decode_state(state["params"], device)
        self.importance = decode_state(state["importance"], device)
