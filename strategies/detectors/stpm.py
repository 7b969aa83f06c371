"""STPM, forward distillation (Wang, Han, Ding & Huang, "Student-Teacher Feature Pyramid
Matching for Anomaly Detection", BMVC 2021).

The student has the teacher's architecture (built by the same backbone registry) with random
weights and learns to reproduce the teacher's three levels from the image.

With channel-L2-normalised features ``t^ = t / ||t||_2`` and ``s^ = s / ||s||_2`` at each pixel:

- loss ``L = sum_l (1 / (B H_l W_l)) sum_{b,h,w} 0.5 * ||t^_l(b,h,w) - s^_l(b,h,w)||_2^2``
  (sum over levels of the mean over batch and pixels; the 0.5 factor is the paper's);
- map ``A = G_sigma=4( prod_l Up(0.5 * ||t^_l - s^_l||^2) )``: per level the same distance,
  bilinear upsampling to the image size, product over levels. The official code does not smooth;
  here every detector's map is smoothed with the same Gaussian (sigma 4, DESIGN.md: "image score =
  maximum of the smoothed map"), so the three detectors are scored alike. Image score = max of A.

Note ``0.5 * ||t^ - s^||^2 = 1 - cos(t, s)``, the per-pixel cosine distance along channels.
"""

from __future__ import annotations

from torch import Tensor, nn

from strategies.backbones import build_backbone
from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.maps import (
    DEFAULT_SIGMA,
    combine_levels,
    cosine_distance_map,
    gaussian_blur,
)


def normalized_distance_maps(teacher: list[Tensor], student: list[Tensor]) -> list[Tensor]:
    """Per level ``0.5 * ||t^ - s^||^2`` (= ``1 - cos``) per pixel, (B, 1, h_l, w_l)."""
    return [cosine_distance_map(t, s) for t, s in zip(teacher, student, strict=True)]


def stpm_loss(teacher: list[Tensor], student: list[Tensor]) -> Tensor:
    """``sum_l mean_{b,h,w} 0.5 * ||t^_l - s^_l||^2``."""
    return sum(m.mean() for m in normalized_distance_maps(teacher, student))


class STPM(AnomalyDetector):
    """Forward distillation into a randomly initialised copy of the teacher's architecture."""

    name = "stpm"

    def __init__(self, teacher: nn.Module, student: nn.Module | None = None,
                 sigma: float = DEFAULT_SIGMA) -> None:
        super().__init__(teacher)
        self.sigma = float(sigma)
        self.student = student if student is not None else build_backbone(teacher.name, "none")
        if tuple(self.student.channels) != tuple(teacher.channels):
            raise ValueError("the STPM student must produce the teacher's channel counts")

    def forward(self, images: Tensor) -> DetectorOutput:
        return DetectorOutput(teacher=self.teacher_features(images),
                              students={"forward": list(self.student(images))})

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        total = stpm_loss(output.teacher, output.students["forward"])
        return LossResult(total=total, parts={"loss_forward": float(total.detach())})

    def level_maps(self, output: DetectorOutput) -> list[Tensor]:
        return normalized_distance_maps(output.teacher, output.students["forward"])

    def anomaly_map_from_output(self, output: DetectorOutput,
                                image_size: tuple[int, int]) -> Tensor:
        combined = combine_levels(self.level_maps(output), tuple(image_size), "product")
        return gaussian_blur(combined, self.sigma)
