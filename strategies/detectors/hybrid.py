"""Hybrid bidirectional distillation: the seed paper ("Beyond Single Distillation:
Bidirectional Feature Learning with Dynamic Weighting for Robust Anomaly Localization",
Wang, Zhang, Chi, Chen & Yu), re-implemented with its two code bugs fixed.

Two students share the frozen teacher:

- **forward** branch F: :class:`~strategies.detectors.forward_student.ForwardStudent`, a
  heterogeneous truncated ResNet with trained CBAM channel attention, image -> teacher levels.
  Loss ``L_F = sum_l mean_{b,h,w} (1 - cos_c(T_l, F_l))`` (STPM's normalised L2, with the 0.5).
- **reverse** branch R: RD4AD's OCBE + decoder, teacher levels -> teacher levels.
  Loss ``L_R = sum_l mean_b [1 - cos(vec T_l, vec R_l)]`` (RD4AD's flattened cosine).

Training loss ``L = w_F L_F + w_R L_R`` with the weighting scheme of
:mod:`strategies.detectors.weighting` (``fixed`` / ``uncertainty`` / ``dwa``); ``LossResult.parts``
holds ``loss_forward``, ``loss_reverse``, ``weight_forward``, ``weight_reverse``.

Fused map. For branch ``k`` and level ``l`` the per-pixel map is ``D_kl = 1 - cos_c(T_l, S_kl)``.
Both branches' maps measure the same quantity (cosine distance to the same teacher features), so
they already share a unit; ``fusion_normalization`` chooses how they are put on a common scale:

- ``"none"`` (default): ``Z_kl = D_kl``;
- ``"standardize"``: ``Z_kl = (D_kl - mu_kl) / sd_kl`` with the mean and standard deviation of
  ``D_kl`` over all pixels of the defect-free training images, estimated by
  :meth:`HybridDetector.calibrate` and stored as buffers (checkpointed); before calibration
  ``mu = 0, sd = 1``.

Then, at every level, ``M_l = alpha Z_Rl + (1 - alpha) Z_Fl`` (``alpha = fusion_alpha``, weight
of the reverse branch, default 0.5) and ``A = G_sigma=4( sum_l Up(M_l) )``; image score = max of
A. This adds the two branches' maps (the seed concatenated two Python lists instead, so its
"fused" map ignored the reverse student).

Defaults (weighting ``uncertainty``, ``fusion_normalization="none"``, ``fusion_alpha=0.5``)
chosen on synthetic data with ``cl-bench train-one --synthetic --variants``; the measurements are
in docs/detectors.md, "How the hybrid's defaults were chosen".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

import torch
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.forward_student import ForwardStudent
from strategies.detectors.maps import (
    DEFAULT_SIGMA,
    combine_levels,
    cosine_distance_map,
    gaussian_blur,
)
from strategies.detectors.rd4ad import (
    RD4AD_TRAIN_DEFAULTS,
    ReverseStudent,
    ReverseStudentOptions,
    check_strides,
    flat_cosine_loss,
)
from strategies.detectors.registry import DetectorSpec, register_detector
from strategies.detectors.stpm import stpm_loss
from strategies.detectors.weighting import build_weighting
from strategies.palette import OKABE_ITO

BRANCHES = ("forward", "reverse")
FusionNormalization = Literal["standardize", "none"]
FUSION_NORMALIZATIONS: tuple[str, ...] = get_args(FusionNormalization)


class HybridDetector(AnomalyDetector):
    """Forward + reverse students, dynamic loss weighting, calibrated per-scale map fusion."""

    name = "hybrid"

    def __init__(
        self,
        teacher: nn.Module,
        weighting: str = "uncertainty",
        fixed_lambda: float = 0.5,
        dwa_temperature: float = 2.0,
        student_blocks: tuple[int, int, int] = (2, 3, 6),
        student_width: int = 128,
        student_planes: tuple[int, int, int] | None = None,
        student_stem: int | None = None,
        reverse_width: float = 1.0,
        ocbe_blocks: int = 3,
        decoder_blocks: tuple[int, int, int] = (6, 4, 3),
        fusion_normalization: str = "none",
        fusion_alpha: float = 0.5,
        sigma: float = DEFAULT_SIGMA,
        ocbe_width: float | None = None,
    ) -> None:
        super().__init__(teacher)
        check_strides(teacher)
        if fusion_normalization not in FUSION_NORMALIZATIONS:
            raise ValueError(f"unknown fusion_normalization {fusion_normalization!r}; "
                             f"use one of {FUSION_NORMALIZATIONS}")
        if not 0.0 <= fusion_alpha <= 1.0:
            raise ValueError(f"fusion_alpha must be in [0, 1], got {fusion_alpha}")
        channels = tuple(teacher.channels)
        nonnegative = getattr(teacher, "nonnegative", True)
        self.forward_student = ForwardStudent(
            channels, tuple(student_blocks), int(student_width),
            None if student_planes is None else tuple(student_planes),
            None if student_stem is None else int(student_stem),
            teacher_nonnegative=nonnegative,
        )
        self.reverse = ReverseStudent(channels, reverse_width, ocbe_blocks,
                                      tuple(decoder_blocks), linear_head=not nonnegative,
                                      ocbe_width=ocbe_width)
        self.weighting = build_weighting(weighting, BRANCHES, fixed_lambda, dwa_temperature)
        self.weighting_scheme = weighting
        self.fusion_normalization = fusion_normalization
        self.fusion_alpha = float(fusion_alpha)
        self.sigma = float(sigma)
        # per (branch, level) map statistics on training images; identity until calibrated
        self.register_buffer("map_mean", torch.zeros(len(BRANCHES), 3))
        self.register_buffer("map_std", torch.ones(len(BRANCHES), 3))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    # ---- forward and loss ------------------------------------------------------------------
    def forward(self, images: Tensor) -> DetectorOutput:
        teacher = self.teacher_features(images)
        return DetectorOutput(
            teacher=teacher,
            students={"forward": list(self.forward_student(images)),
                      "reverse": self.reverse(teacher)},
        )

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        losses = {
            "forward": stpm_loss(output.teacher, output.students["forward"]),
            "reverse": flat_cosine_loss(output.teacher, output.students["reverse"]),
        }
        total, weights = self.weighting(losses)
        parts = {f"loss_{k}": float(v.detach()) for k, v in losses.items()}
        parts.update({f"weight_{k}": float(w) for k, w in zip(BRANCHES, weights, strict=True)})
        return LossResult(total=total, parts=parts)

    def on_epoch_end(self) -> None:
        self.weighting.on_epoch_end()

    # ---- maps ------------------------------------------------------------------------------
    def raw_level_maps(self, output: DetectorOutput) -> dict[str, list[Tensor]]:
        """Per branch, per level ``1 - cos_c(T_l, S_l)``, (B, 1, h_l, w_l)."""
        return {
            branch: [cosine_distance_map(t, s)
                     for t, s in zip(output.teacher, output.students[branch], strict=True)]
            for branch in BRANCHES
        }

    def normalized_level_maps(self, output: DetectorOutput) -> dict[str, list[Tensor]]:
        raw = self.raw_level_maps(output)
        if self.fusion_normalization == "none":
            return raw
        return {
            branch: [(m - self.map_mean[k, level]) / self.map_std[k, level]
                     for level, m in enumerate(raw[branch])]
            for k, branch in enumerate(BRANCHES)
        }

    def branch_anomaly_maps(self, output: DetectorOutput,
                            image_size: tuple[int, int]) -> dict[str, Tensor]:
        """Smoothed maps of each branch alone (normalised levels summed) and the fused map."""
        z = self.normalized_level_maps(output)
        size = tuple(image_size)
        maps = {branch: gaussian_blur(combine_levels(z[branch], size, "sum"), self.sigma)
                for branch in BRANCHES}
        maps["fused"] = self._fuse(z, size)
        return maps

    def _fuse(self, z: dict[str, list[Tensor]], size: tuple[int, int]) -> Tensor:
        a = self.fusion_alpha
        fused_levels = [a * r + (1.0 - a) * f
                        for f, r in zip(z["forward"], z["reverse"], strict=True)]
        return gaussian_blur(combine_levels(fused_levels, size, "sum"), self.sigma)

    def anomaly_map_from_output(self, output: DetectorOutput,
                                image_size: tuple[int, int]) -> Tensor:
        return self._fuse(self.normalized_level_maps(output), tuple(image_size))

    # ---- calibration -----------------------------------------------------------------------
    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        """Estimate each branch's per-level map mean and std on defect-free training images.

        ``batches`` yields image tensors (B, 3, H, W) or tuples whose first item is one.
        """
        was_training = self.training
        self.eval()
        total = torch.zeros(len(BRANCHES), 3, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        count = torch.zeros_like(total)
        try:
            for batch in batches:
                images = batch[0] if isinstance(batch, list | tuple) else batch
                images = images.to(self.map_mean.device)
                raw = self.raw_level_maps(self(images))
                for k, branch in enumerate(BRANCHES):
                    for level, m in enumerate(raw[branch]):
                        m = m.double().cpu()
                        total[k, level] += m.sum()
                        total_sq[k, level] += (m * m).sum()
                        count[k, level] += m.numel()
        finally:
            self.train(was_training)
        if not bool((count > 0).all()):
            raise ValueError("calibrate() got no images")
        mean = total / count
        var = (total_sq / count - mean * mean).clamp_min(0.0)
        self.map_mean.copy_(mean.float())
        self.map_std.copy_(var.sqrt().clamp_min(1e-6).float())
        self.calibrated.fill_(True)


class HybridOptions(ReverseStudentOptions):
    """The hybrid's options: the forward student, the reverse student (shared with RD4AD), the
    loss weighting and the map fusion (the seed paper's values by default)."""

    weighting: Literal["fixed", "uncertainty", "dwa"] = Field(
        "uncertainty", description="loss weighting scheme")
    fixed_lambda: float = Field(0.5, ge=0, le=1, description="fixed: weight of the forward loss "
                                "(reverse gets 1 - lambda)")
    dwa_temperature: float = Field(2.0, gt=0, description="dwa: softmax temperature T")
    student_blocks: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        (2, 3, 6), description="forward student blocks per stage")
    student_width: int = Field(128, ge=1, description="forward student width_per_group "
                               "(64 = plain)")
    student_planes: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        None, description="forward student planes per stage; null = teacher channels / 4")
    student_stem: int | None = Field(None, ge=1, description="forward student stem channels; "
                                     "null = min(64, teacher level-1 channels)")
    reverse_width: float = Field(1.0, gt=0, description="multiplier of the OCBE/decoder inner "
                                 "widths (1 = official)")
    fusion_normalization: FusionNormalization = Field(
        "none", description="'none': add the branches' raw 1 - cos maps (already one unit); "
        "'standardize': z-score each branch's level maps with training-image statistics first")
    fusion_alpha: float = Field(0.5, ge=0, le=1,
                                description="weight of the reverse branch in the fused map")


register_detector(DetectorSpec(
    "hybrid", HybridDetector, HybridOptions,
    "forward + reverse students with dynamic loss weighting (the seed paper)",
    color=OKABE_ITO["vermillion"],
    # RD4AD's Adam (its reverse branch) with the seed paper's 10 % linear warm-up and linear
    # decay to 0
    train_defaults={"optimizer": dict(RD4AD_TRAIN_DEFAULTS["optimizer"]),
                    "schedule": {"name": "warmup_linear", "warmup_fraction": 0.1}},
    training_notes="loss: forward (STPM-style) and reverse (RD4AD) losses combined by the "
                   "weighting option"))
