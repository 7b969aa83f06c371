"""STPM, forward distillation (Wang, Han, Ding & Huang, "Student-Teacher Feature Pyramid
Matching for Anomaly Detection", BMVC 2021).

The student has the teacher's architecture (built by the same backbone registry) with random
weights and learns to reproduce the teacher's three levels from the image. Its BatchNorm layers
use PyTorch's momentum 0.1 (running statistics ``r <- 0.9 r + 0.1 batch``), as the official code's
torchvision ResNet-18 student and anomalib's timm student do; the TF-ported EfficientNet-Lite
builds them with TensorFlow's decay 0.99 (momentum 0.01): after ``n`` steps a share ``0.99^n``
of the running statistics is still the initial (0, 1), so after a short task the student ran in
evaluation with statistics it never trained with (docs/results/stpm_vs_anomalib.md).

With channel-L2-normalised features ``t^ = t / ||t||_2`` and ``s^ = s / ||s||_2`` at each pixel:

- loss, the official code's scale (``MSELoss(reduction="sum")`` times ``0.5 / (h w)`` per level),
  ``L = sum_b sum_l (1 / (H_l W_l)) sum_{h,w} 0.5 * ||t^_l(b,h,w) - s^_l(b,h,w)||_2^2``:
  the paper's per-image loss (0.5 factor, mean over pixels, sum over levels) summed over the
  images of the batch, so the paper's SGD learning rate 0.4 means what it means there;
- map ``A = G_sigma=4( prod_l Up(0.5 * ||t^_l - s^_l||^2) )``: per level the same distance,
  bilinear upsampling to the image size, product over levels. The official code does not smooth;
  here every detector's map is smoothed with the same Gaussian (sigma 4; image score = maximum
  of the smoothed map, docs/detectors.md), so the three detectors are scored alike. Image
  score = max of A.

Note ``0.5 * ||t^ - s^||^2 = 1 - cos(t, s)``, the per-pixel cosine distance along channels.
"""

from __future__ import annotations

from torch import Tensor, nn

from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.maps import (
    DEFAULT_SIGMA,
    combine_levels,
    cosine_distance_map,
    gaussian_blur,
)
from strategies.detectors.registry import DetectorSpec, SmoothedMapOptions, register_detector
from strategies.palette import OKABE_ITO
from strategies.teachers.backbones import build_backbone


def normalized_distance_maps(teacher: list[Tensor], student: list[Tensor]) -> list[Tensor]:
    """Per level ``0.5 * ||t^ - s^||^2`` (= ``1 - cos``) per pixel, (B, 1, h_l, w_l)."""
    return [cosine_distance_map(t, s) for t, s in zip(teacher, student, strict=True)]


#: BatchNorm momentum of the student (PyTorch's default; see the module docstring)
STUDENT_BN_MOMENTUM = 0.1


def stpm_loss(teacher: list[Tensor], student: list[Tensor]) -> Tensor:
    """``sum_l mean_{b,h,w} 0.5 * ||t^_l - s^_l||^2`` (batch mean; the hybrid's forward loss)."""
    return sum(m.mean() for m in normalized_distance_maps(teacher, student))


def stpm_batch_sum_loss(teacher: list[Tensor], student: list[Tensor]) -> Tensor:
    """``sum_b sum_l mean_{h,w} 0.5 * ||t^_l - s^_l||^2``: the official STPM code's scale,
    ``B`` times :func:`stpm_loss` for a batch of ``B`` images."""
    return sum(m.mean(dim=(1, 2, 3)).sum() for m in normalized_distance_maps(teacher, student))


class STPM(AnomalyDetector):
    """Forward distillation into a randomly initialised copy of the teacher's architecture."""

    name = "stpm"

    def __init__(self, teacher: nn.Module, student: nn.Module | None = None,
                 sigma: float = DEFAULT_SIGMA) -> None:
        super().__init__(teacher)
        self.sigma = float(sigma)
        if student is None:
            student = build_backbone(teacher.name, "none")
            for module in student.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.momentum = STUDENT_BN_MOMENTUM
        self.student = student
        if tuple(self.student.channels) != tuple(teacher.channels):
            raise ValueError("the STPM student must produce the teacher's channel counts")

    def forward(self, images: Tensor) -> DetectorOutput:
        return DetectorOutput(teacher=self.teacher_features(images),
                              students={"forward": list(self.student(images))})

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        total = stpm_batch_sum_loss(output.teacher, output.students["forward"])
        return LossResult(total=total, parts={"loss_forward": float(total.detach())})

    def level_maps(self, output: DetectorOutput) -> list[Tensor]:
        return normalized_distance_maps(output.teacher, output.students["forward"])

    def anomaly_map_from_output(self, output: DetectorOutput,
                                image_size: tuple[int, int]) -> Tensor:
        combined = combine_levels(self.level_maps(output), tuple(image_size), "product")
        return gaussian_blur(combined, self.sigma)


class STPMOptions(SmoothedMapOptions):
    """STPM's options: only the smoothing of its map (``sigma``)."""


register_detector(DetectorSpec(
    "stpm", STPM, STPMOptions,
    "forward distillation into a copy of the teacher (Wang et al., BMVC 2021)",
    color=OKABE_ITO["blue"],
    # Wang et al. 2021, Sec. 4.1: SGD, learning rate 0.4, momentum 0.9, weight decay 1e-4,
    # constant learning rate
    train_defaults={"optimizer": {"name": "sgd", "lr": 0.4, "momentum": 0.9,
                                  "weight_decay": 1.0e-4},
                    "schedule": {"name": "constant"}},
    training_notes="loss: the official code's scale, 0.5 * mean_{h,w} ||t^ - s^||^2 per level, "
                   "summed over levels and images (STPMLoss)"))
