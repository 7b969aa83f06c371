"""Memory Aware Synapses (Aljundi et al., ECCV 2018) as Avalanche's ``MASPlugin``.

MAS needs no labels: the importance of parameter ``theta_k`` is the mean, over a task's training
images ``x``, of ``|d ||f(x)||_2^2 / d theta_k|``, where ``f`` is the function the model learns.
For a distillation detector ``f(x)`` is the students' features: every feature level of every
student branch, flattened and concatenated per image (the frozen teacher is hidden from
``parameters()``, so it is never regularised). After task t the importances are blended,
``Omega <- alpha * Omega + (1 - alpha) * Omega_t`` (Avalanche's online update), the weights
``theta*`` saved, and while training every later task the loss gains
``mas_lambda * sum_k Omega_k (theta_k - theta*_k)^2``.

The absolute value is taken per image, as in the paper (Omega = (1/N) sum_k |g(x_k)|), not of
the batch-mean gradient as Avalanche's ``MASPlugin._get_importance`` does (|mean_k g(x_k)|,
which cancels gradients of opposite signs): :func:`per_image_importance` runs one backward pass
per image (hand-written because Avalanche has no per-sample variant; it costs N backward passes
once per task).

The importance pass runs once after each task (after the detector's calibration) over the
task's training images in order, with the detector in **eval mode**, as Avalanche's EWC does:
Avalanche's ``MASPlugin`` asks for train mode, which would compute the importances with batch
statistics and overwrite the BatchNorm running statistics that the trained students (and their
calibration) use. :class:`ResumableMASPlugin` adds ``state_dict`` / ``load_state_dict`` for
resumed runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from avalanche.training.plugins import MASPlugin
from avalanche.training.utils import zerolike_params_dict
from torch import Tensor, nn
from torch.utils.data import DataLoader

from strategies.continual.plugin_state import decode_state, encode_state


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


def per_image_importance(forward: Callable[[Tensor], Tensor],
                         parameters: dict[str, nn.Parameter],
                         batches: Iterable[Tensor]) -> dict[str, Tensor]:
    """MAS importances Omega_k = (1/N) sum_{n=1..N} |d ||f(x_n)||_2^2 / d theta_k| (Aljundi et
    al., ECCV 2018, Eq. 2-4 with the squared l2 norm of Sec. 4.1): one backward pass per image
    ``x_n`` of ``batches``; ``forward`` maps a batch to its outputs ``(B, D)``."""
    importance = {name: torch.zeros_like(p) for name, p in parameters.items()}
    count = 0
    for images in batches:
        for n in range(images.shape[0]):
            for p in parameters.values():
                p.grad = None
            output = forward(images[n:n + 1])
            output.flatten(1).pow(2).sum().backward()
            for name, p in parameters.items():
                if p.grad is not None:
                    importance[name] += p.grad.abs()
            count += 1
    if count == 0:
        raise ValueError("MAS importance: the task has no training image")
    for p in parameters.values():
        p.grad = None
    return {name: value / count for name, value in importance.items()}


class ResumableMASPlugin(MASPlugin):
    """Avalanche's ``MASPlugin`` on the students' features, with saveable state."""

    def _get_importance(self, strategy) -> dict:
        dataset = strategy.experience.dataset
        loader = DataLoader(dataset, batch_size=strategy.train_mb_size,
                            collate_fn=getattr(dataset, "collate_fn", None))
        training = strategy.model.training
        outputs = StudentOutputs(strategy.model).train()  # eval mode, see the module docstring
        parameters = {name: p for name, p in strategy.model.named_parameters()
                      if p.requires_grad}
        importance = zerolike_params_dict(strategy.model)  # Avalanche's ParamData, all params
        try:
            values = per_image_importance(outputs, parameters,
                                          (batch[0].to(strategy.device) for batch in loader))
            for name, value in values.items():
                importance[name].data = value
            return importance
        finally:
            strategy.optimizer.zero_grad()
            strategy.model.train(training)

    def state_dict(self) -> dict[str, Any]:
        return {"params": encode_state(self.params),
                "importance": encode_state(self.importance)}

    def load_state_dict(self, state: dict[str, Any], strategy) -> None:
        device = torch.device(strategy.device)
        self.params = decode_state(state["params"], device)
        self.importance = decode_state(state["importance"], device)
