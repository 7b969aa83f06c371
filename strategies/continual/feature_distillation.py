"""Feature distillation toward the previous task's students (LwF, Li & Hoiem, ECCV 2016 / TPAMI
2018, adapted to feature students).

Avalanche's ``LwFPlugin`` distils softmax logits and reads class targets, which these detectors
do not have. Here, after each task, a frozen copy of the students is kept; while training every
later task the loss gains

``L_fd = alpha * sum_branches sum_levels mean_{b,h,w} [1 - cos_c(S_l(x), S_l^prev(x))]``

on the current minibatch ``x``: the detectors' own scale-free distance (cosine distance along
channels per location, averaged over the batch and the locations), summed over the feature
levels and the student branches (forward and/or reverse).

Both copies run in the same normalisation mode, so the penalty is exactly 0 (up to rounding) at
identical weights: the current students are in train mode (BatchNorm normalises with the
batch's statistics) and the previous copy is in train mode too, with its BatchNorm layers told
not to track running statistics (``track_running_stats = False``): they normalise with the same
batch statistics and leave the copy's stored running statistics untouched. This re-uses the
training forward pass of the current students (no second pass in eval mode), and the penalty
measures drift of the learned weights, not the difference between batch and running
statistics of earlier categories.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from strategies.continual.plugin_state import decode_state, encode_state
from strategies.detectors.base import DetectorOutput
from strategies.detectors.maps import cosine_distance_map


def frozen_batch_statistics_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` (students only; the teacher is shared) in train mode whose
    BatchNorm layers normalise with batch statistics and never update their running ones."""
    previous = copy.deepcopy(model)
    prepare_previous(previous)
    return previous


def prepare_previous(previous: nn.Module) -> None:
    """Freeze ``previous`` and set its BatchNorm layers to batch statistics without tracking."""
    for p in previous.parameters():
        p.requires_grad_(False)
    previous.train()
    for module in previous.modules():
        if isinstance(module, _BatchNorm):
            module.track_running_stats = False


def feature_distance(current: DetectorOutput, previous: DetectorOutput) -> Tensor:
    """``sum_branches sum_levels mean_{b,h,w} (1 - cos_c)`` between two outputs' students."""
    total = None
    for branch, levels in current.students.items():
        before_levels = previous.students[branch]
        for now, before in zip(levels, before_levels, strict=True):
            term = cosine_distance_map(now, before).mean()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("the detector output has no student features")
    return total


class StudentDistillationPlugin(SupervisedPlugin):
    """Feature distillation toward the previous task's students (see the module docstring)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.previous: nn.Module | None = None
        self.last_penalty = 0.0  # alpha * distance of the last minibatch (a float)

    def penalty(self, strategy) -> Tensor:
        """``alpha * feature_distance(current students, previous students)`` on ``mb_x``."""
        if self.previous is None:
            return torch.zeros((), device=strategy.mb_x.device)
        autocast = getattr(strategy, "_autocast", contextlib.nullcontext)
        with torch.no_grad(), autocast():
            before = self.previous(strategy.mb_x)
        return self.alpha * feature_distance(strategy.mb_output, before)

    def before_backward(self, strategy, **kwargs) -> None:
        if self.previous is None or self.alpha == 0:
            self.last_penalty = 0.0
            return
        penalty = self.penalty(strategy)
        self.last_penalty = float(penalty.detach())
        strategy.loss = strategy.loss + penalty

    def after_training_exp(self, strategy, **kwargs) -> None:
        # deepcopy shares the frozen teacher (AnomalyDetector.__deepcopy__): only students copy
        self.previous = frozen_batch_statistics_copy(strategy.model)

    # ---- resumable state --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The previous task's students (CPU copies), or ``None`` before the first task ends."""
        prev = self.previous
        return {"previous": None if prev is None else encode_state(prev.state_dict())}

    def load_state_dict(self, state: dict[str, Any], strategy) -> None:
        if state.get("previous") is None:
            return
        device = torch.device(strategy.device)
        previous = copy.deepcopy(strategy.model)
        previous.load_state_dict(decode_state(state["previous"], device))
        prepare_previous(previous)
        self.previous = previous
