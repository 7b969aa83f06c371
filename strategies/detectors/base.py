"""The interface every knowledge-distillation anomaly detector implements.

A detector is a plain :class:`torch.nn.Module` that knows nothing of Avalanche. It owns a frozen,
pretrained teacher that is *hidden* from ``parameters()``, ``state_dict()`` and every plugin that
walks the module tree (EWC, SI, deepcopy-based distillation): the teacher is held in a plain
list, moved along by :meth:`_apply`, kept in eval mode by :meth:`train`, and shared (not copied)
by :func:`copy.deepcopy`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class DetectorOutput:
    """What ``detector(images)`` returns: teacher features and each student's features.

    ``teacher``: list of the teacher's feature levels (B, C_l, H_l, W_l), increasing stride.
    ``students``: branch name -> list of the same shapes as ``teacher`` (e.g. ``{"forward": ...}``
    for STPM, ``{"reverse": ...}`` for RD4AD, both for the hybrid).
    """

    teacher: list[Tensor]
    students: dict[str, list[Tensor]]


@dataclass
class LossResult:
    """Total training loss and its named parts (detached floats, for logging)."""

    total: Tensor
    parts: dict[str, float] = field(default_factory=dict)


class AnomalyDetector(nn.Module):
    """Base class: frozen hidden teacher plus trainable students.

    Subclasses implement :meth:`forward`, :meth:`compute_loss` and
    :meth:`anomaly_map_from_output`.
    """

    #: short name used in configs and records ("stpm", "rd4ad", "hybrid")
    name: str = "detector"

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        # A plain list is not registered by nn.Module: the teacher stays out of parameters(),
        # state_dict(), named_modules() and therefore out of every plugin's snapshots.
        self._teacher_holder: list[nn.Module] = [teacher]

    # ---- the hidden teacher -------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module:
        return self._teacher_holder[0]

    def set_teacher(self, teacher: nn.Module) -> nn.Module:
        """Put ``teacher`` in place of the hidden teacher and return the one it replaces.

        For sharing one frozen teacher between detectors and for wrapping it (the teacher-feature
        cache). The new teacher stays hidden like the first: out of ``parameters()``,
        ``state_dict()`` and every plugin's snapshots, shared (not copied) by deep copies.
        """
        previous, self._teacher_holder[0] = self._teacher_holder[0], teacher
        return previous

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        self._teacher_holder[0]._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> AnomalyDetector:
        super().train(mode)
        self.teacher.eval()  # BatchNorm statistics of the teacher never move
        return self

    def __deepcopy__(self, memo: dict) -> AnomalyDetector:
        """Deep-copy the students; share the frozen teacher (it never changes)."""
        holder = self._teacher_holder
        memo[id(holder)] = holder  # copy.deepcopy will reuse the same list object
        cls = self.__class__
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, copy.deepcopy(value, memo))
        return new

    @torch.no_grad()
    def teacher_features(self, images: Tensor) -> list[Tensor]:
        self.teacher.eval()
        return [f.detach() for f in self.teacher(images)]

    # ---- what subclasses implement ------------------------------------------------------
    def forward(self, images: Tensor) -> DetectorOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_loss(self, output: DetectorOutput) -> LossResult:  # pragma: no cover
        raise NotImplementedError

    def anomaly_map_from_output(
        self, output: DetectorOutput, image_size: tuple[int, int]
    ) -> Tensor:  # pragma: no cover
        """Smoothed anomaly map (B, 1, H, W) at ``image_size``; higher means more anomalous."""
        raise NotImplementedError

    # ---- shared behaviour ---------------------------------------------------------------
    def loss(self, images: Tensor) -> LossResult:
        """Training loss for a batch of defect-free images."""
        return self.compute_loss(self(images))

    @torch.no_grad()
    def anomaly_map(self, images: Tensor) -> Tensor:
        """Anomaly map (B, 1, H, W) at the input resolution."""
        return self.anomaly_map_from_output(self(images), tuple(images.shape[-2:]))

    @staticmethod
    def image_scores(maps: Tensor) -> Tensor:
        """Image score = maximum of the smoothed map, shape (B,)."""
        return maps.flatten(1).amax(dim=1)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    # ---- gradient-free learning (memory banks, statistics) --------------------------------
    #: True for a detector that learns without gradients: per task, the strategy builds no
    #: optimizer, ignores the epochs and calls :meth:`fit` once with the task's training images
    #: (:class:`strategies.training.avalanche_strategy.DistillationStrategy`). Its learnt state must
    #: be in ``state_dict()`` (buffers or extra state), so checkpoints and resume work unchanged.
    learns_without_gradients: bool = False

    def fit(self, batches: Iterable[Tensor]) -> None:
        """Learn from one task's defect-free training images (batches (B, 3, H, W)).

        Only for ``learns_without_gradients`` detectors; called once per task, in eval mode,
        under ``torch.no_grad``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} learns with gradients (compute_loss); it has no fit()")

    def memory_stats(self) -> dict[str, float]:
        """What the detector keeps between tasks, for the run's manifest: ``state_mb``, the size
        of ``state_dict()`` in MiB (students, buffers, memory banks; never the teacher)."""
        nbytes = sum(t.numel() * t.element_size() for t in self.state_dict().values()
                     if isinstance(t, Tensor))
        return {"state_mb": round(nbytes / 2**20, 3)}

    # ---- optional hooks (no-ops by default) ---------------------------------------------
    def on_epoch_end(self) -> None:
        """Called once per training epoch (dynamic weight average updates its weights here)."""

    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        """Called after training each task with its defect-free training images.

        The hybrid uses it to estimate each branch's map statistics for fusion.
        """
