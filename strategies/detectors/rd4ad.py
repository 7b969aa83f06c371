"""RD4AD, reverse distillation (Deng & Li, "Anomaly Detection via Reverse Distillation from
One-Class Embedding", CVPR 2022), generic over the teacher's channel counts.

Reverse student = OCBE + decoder:

- **OCBE** (one-class bottleneck embedding): teacher level 1 goes through two strided 3x3
  convolutions (C1 -> C2 -> C3), level 2 through one (C2 -> C3), each with BatchNorm + ReLU, so
  both reach level 3's resolution; the three are concatenated (3*C3 channels) and compressed by
  ``ocbe_blocks`` residual bottleneck blocks, the first with stride 2, to ``2*C3*width``
  channels at stride 32 (for Wide-ResNet-50-2: 3072 -> 2048 at 8x8, the official layout).
  The blocks' inner width is ``C3*ocbe_width`` (``ocbe_width`` defaults to ``width``): 1024 for
  Wide-ResNet-50-2 in the official code (``BN_layer`` inherits ``width_per_group=128``).
  anomalib's ``OCBE`` builds these blocks with the default ``width_per_group=64``, i.e. inner
  width 512 (``ocbe_width=0.5``): 55.7M instead of 83.8M student parameters that compute;
  ``cl-bench bench anomalib`` times both layouts.
- **Decoder**: mirrors the teacher: one stage per level, deepest first; each stage's first
  bottleneck block upsamples by 2 with a 2x2 transposed convolution (main path and shortcut),
  output channels C_l; inner width ``C_l/2 * width`` (Wide-ResNet: 512 for C=1024, as the
  official ``de_wide_resnet50_2``). Blocks per stage ``decoder_blocks`` in teacher-level order
  (level 1, 2, 3) = (6, 4, 3) as in the official code. Where the teacher's features are signed
  (EfficientNet), each stage ends with a linear 1x1 convolution, since a ReLU output cannot
  reach negative targets.

Loss (official code, kept by anomalib after RD4AD issue #22):
``L = sum_l mean_b [1 - cos(vec(T_l[b]), vec(D_l[b]))]`` with the cosine taken over the whole
flattened ``C*H*W`` vector of each sample (``loss="flat"``). A cosine "along channels"
that is the anomaly map's definition. The flattened form is the default because the published
numbers were obtained with it; ``loss="pixel"`` (mean over pixels of the per-pixel cosine
distance) is offered for comparison.

Image sizes that are not a multiple of 32 make the decoder's doubled resolutions differ from
the teacher's (rounded-up) ones; each decoder stage's output is then resized bilinearly to its
teacher level (:func:`match_size`) before the next stage, the loss and the map. Multiples of 32
are never resized, so their results are unchanged.

Map: ``A = G_sigma=4( sum_l Up(1 - cos_c(T_l, D_l)) )``, cosine along channels per pixel,
bilinear upsampling to the image size; image score = max of A.
"""

from __future__ import annotations

import itertools
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.maps import (
    DEFAULT_SIGMA,
    combine_levels,
    cosine_distance_map,
    gaussian_blur,
)
from strategies.detectors.registry import (
    DetectorSpec,
    SmoothedMapOptions,
    register_detector,
)
from strategies.palette import OKABE_ITO

RD4ADLoss = Literal["flat", "pixel"]
RD4AD_LOSSES: tuple[str, ...] = get_args(RD4ADLoss)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Bottleneck(nn.Module):
    """ResNet bottleneck 1x1 -> 3x3 (stride) -> 1x1, projection shortcut when shapes change."""

    def __init__(self, cin: int, inner: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class UpBottleneck(nn.Module):
    """Decoder bottleneck whose 3x3 convolution is a 2x2 stride-2 transposed convolution
    (and so is its shortcut), doubling the resolution (official ``de_resnet``)."""

    def __init__(self, cin: int, inner: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def match_size(features: Tensor, size: tuple[int, int]) -> Tensor:
    """``features`` resized bilinearly to ``size`` (h, w), or returned unchanged when it has it.

    The decoder doubles the resolution at every stage (``h -> 2h``) while the teacher's strided
    convolutions round up (``h -> ceil(h / 2)``), so for an image side that is not a multiple
    of 32 (e.g. 33, 50, 100) the two disagree (at 100 px: 7 -> 4 -> 8 -> 16 -> 32 against the
    teacher's 7, 13, 25). Resizing each reconstructed level to its teacher level keeps loss and
    map defined for every image size; at multiples of 32 nothing is resized, so results there
    are unchanged.
    """
    if tuple(features.shape[-2:]) == tuple(size):
        return features
    return F.interpolate(features, size=tuple(size), mode="bilinear", align_corners=False)


def _inner(channels: float) -> int:
    return max(8, round(channels))


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, BatchNorm gamma 1 / beta 0 (official OCBE init)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class OCBE(nn.Module):
    """One-class bottleneck embedding: multi-scale fusion of the teacher's 3 levels, then
    residual compression with stride 2 to ``2*C3*width`` channels, inner width
    ``C3*inner_width`` (``inner_width`` None: ``width``)."""

    def __init__(self, channels: tuple[int, int, int], width: float = 1.0,
                 blocks: int = 3, inner_width: float | None = None) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.level1 = nn.Sequential(conv_bn_relu(c1, c2, 2), conv_bn_relu(c2, c3, 2))
        self.level2 = conv_bn_relu(c2, c3, 2)
        self.out_channels = _inner(2 * c3 * width)
        inner = _inner(c3 * (width if inner_width is None else inner_width))
        layers = [Bottleneck(3 * c3, inner, self.out_channels, stride=2)]
        layers += [Bottleneck(self.out_channels, inner, self.out_channels)
                   for _ in range(blocks - 1)]
        self.compress = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, features: list[Tensor]) -> Tensor:
        f1, f2, f3 = features
        size = tuple(f3.shape[-2:])
        fused = torch.cat([match_size(self.level1(f1), size), match_size(self.level2(f2), size),
                           f3], dim=1)
        return self.compress(fused)


class Decoder(nn.Module):
    """Reverse student: reconstructs the teacher's levels from the OCBE embedding."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int], width: float = 1.0,
                 blocks: tuple[int, int, int] = (6, 4, 3), linear_head: bool = False) -> None:
        super().__init__()
        stages = []
        heads = []
        cin = in_channels
        for level in (2, 1, 0):  # deepest first
            cout, inner = channels[level], _inner(channels[level] / 2 * width)
            layers: list[nn.Module] = [UpBottleneck(cin, inner, cout)]
            layers += [Bottleneck(cout, inner, cout) for _ in range(blocks[level] - 1)]
            stages.append(nn.Sequential(*layers))
            heads.append(nn.Conv2d(cout, cout, 1) if linear_head else nn.Identity())
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        init_weights(self)

    def forward(self, embedding: Tensor,
                sizes: list[tuple[int, int]] | None = None) -> list[Tensor]:
        """Reconstructed levels, finest first; ``sizes`` (the teacher's levels' (h, w), finest
        first) aligns each stage's output to its level before the next stage
        (:func:`match_size`)."""
        outputs = []
        x = embedding
        targets = [None] * len(self.stages) if sizes is None else list(sizes)[::-1]
        for stage, head, size in zip(self.stages, self.heads, targets, strict=True):
            x = stage(x)
            if size is not None:
                x = match_size(x, size)
            outputs.append(head(x))
        return outputs[::-1]  # teacher order: level 1 (finest) first


class ReverseStudent(nn.Module):
    """OCBE + decoder: teacher features -> reconstructed teacher features."""

    def __init__(self, channels: tuple[int, int, int], width: float = 1.0, ocbe_blocks: int = 3,
                 decoder_blocks: tuple[int, int, int] = (6, 4, 3),
                 linear_head: bool = False, ocbe_width: float | None = None) -> None:
        super().__init__()
        self.ocbe = OCBE(channels, width, ocbe_blocks, ocbe_width)
        self.decoder = Decoder(self.ocbe.out_channels, channels, width, decoder_blocks,
                               linear_head)

    def forward(self, teacher_features: list[Tensor]) -> list[Tensor]:
        sizes = [tuple(f.shape[-2:]) for f in teacher_features]
        return self.decoder(self.ocbe(teacher_features), sizes)


def flat_cosine_loss(teacher: list[Tensor], student: list[Tensor]) -> Tensor:
    """``sum_l mean_b [1 - cos(vec(T_l[b]), vec(S_l[b]))]`` over flattened C*H*W vectors."""
    return sum(
        (1.0 - F.cosine_similarity(t.flatten(1), s.flatten(1), dim=1)).mean()
        for t, s in zip(teacher, student, strict=True)
    )


def pixel_cosine_loss(teacher: list[Tensor], student: list[Tensor]) -> Tensor:
    """``sum_l mean_{b,h,w} [1 - cos_c(T_l, S_l)]`` (cosine along channels per pixel)."""
    return sum(cosine_distance_map(t, s).mean() for t, s in zip(teacher, student, strict=True))


def check_strides(teacher: nn.Module) -> None:
    strides = tuple(teacher.strides)
    if any(b != 2 * a for a, b in itertools.pairwise(strides)):
        raise ValueError(f"RD4AD needs teacher levels whose strides double, got {strides}")


class RD4AD(AnomalyDetector):
    """Reverse distillation detector (see the module docstring for loss and map)."""

    name = "rd4ad"

    def __init__(self, teacher: nn.Module, width: float = 1.0, ocbe_blocks: int = 3,
                 decoder_blocks: tuple[int, int, int] = (6, 4, 3), loss: str = "flat",
                 sigma: float = DEFAULT_SIGMA, ocbe_width: float | None = None) -> None:
        super().__init__(teacher)
        check_strides(teacher)
        if loss not in RD4AD_LOSSES:
            raise ValueError(f"unknown RD4AD loss {loss!r}; use one of {RD4AD_LOSSES}")
        self.loss_kind = loss
        self.sigma = float(sigma)
        self.reverse = ReverseStudent(
            tuple(teacher.channels), width, ocbe_blocks, tuple(decoder_blocks),
            linear_head=not getattr(teacher, "nonnegative", True), ocbe_width=ocbe_width,
        )

    def forward(self, images: Tensor) -> DetectorOutput:
        teacher = self.teacher_features(images)
        return DetectorOutput(teacher=teacher, students={"reverse": self.reverse(teacher)})

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        loss_fn = flat_cosine_loss if self.loss_kind == "flat" else pixel_cosine_loss
        total = loss_fn(output.teacher, output.students["reverse"])
        return LossResult(total=total, parts={"loss_reverse": float(total.detach())})

    def level_maps(self, output: DetectorOutput) -> list[Tensor]:
        """Per-level ``1 - cos`` along channels, (B, 1, h_l, w_l)."""
        return [cosine_distance_map(t, s)
                for t, s in zip(output.teacher, output.students["reverse"], strict=True)]

    def anomaly_map_from_output(self, output: DetectorOutput,
                                image_size: tuple[int, int]) -> Tensor:
        combined = combine_levels(self.level_maps(output), tuple(image_size), "sum")
        return gaussian_blur(combined, self.sigma)


class ReverseStudentOptions(SmoothedMapOptions):
    """The options of a reverse student (OCBE + decoder) that RD4AD and the hybrid share."""

    ocbe_blocks: int = Field(3, ge=1, description="residual blocks in the OCBE compression")
    ocbe_width: float | None = Field(
        None, gt=0, description="multiplier of the OCBE blocks' inner width only; null = width "
        "(official); 0.5 = anomalib's OCBE")
    decoder_blocks: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        (6, 4, 3), description="decoder blocks per teacher level (level 1, 2, 3); official "
        "(6, 4, 3)")


class RD4ADOptions(ReverseStudentOptions):
    """RD4AD's options (Deng & Li 2022; the official code's values by default)."""

    width: float = Field(1.0, gt=0, description="multiplier of the OCBE/decoder inner widths "
                         "(1 = official)")
    loss: RD4ADLoss = Field(
        "flat", description="cosine over flattened C*H*W per sample (official) or per pixel "
        "along channels")


#: Deng & Li 2022, Sec. 4.1 and the official code: Adam, learning rate 0.005, betas
#: (0.5, 0.999), constant learning rate
RD4AD_TRAIN_DEFAULTS = {"optimizer": {"name": "adam", "lr": 0.005, "betas": [0.5, 0.999]},
                        "schedule": {"name": "constant"}}

register_detector(DetectorSpec(
    "rd4ad", RD4AD, RD4ADOptions,
    "reverse distillation through a one-class bottleneck (Deng & Li, CVPR 2022)",
    color=OKABE_ITO["bluish_green"],
    train_defaults=RD4AD_TRAIN_DEFAULTS,
    training_notes="loss: 1 - cosine similarity per level, summed over levels (official "
                   "code; option loss)"))
