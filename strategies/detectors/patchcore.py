"""PatchCore (Roth, Pemula, Zepeda, Schölkopf, Brox & Gehler, "Towards Total Recall in Industrial
Anomaly Detection", CVPR 2022): a memory bank of locally aware patch features of defect-free
images; a patch's anomaly score is its distance to the nearest bank entry. No gradients: the
detector learns by :meth:`PatchCore.fit` (``learns_without_gradients``).

Features, from the frozen teacher's levels ``l1 < l2`` (default 2 and 3, strides 8 and 16: the
paper's and anomalib's ``layer2``/``layer3`` of a ResNet):
``phi_l = AvgPool_3x3,stride 1,pad 1(f_l)`` (the paper's neighbourhood aggregation, p = 3; zero
padding counted in the mean, as torch's and anomalib's ``AvgPool2d``),
``phi = concat_c(phi_l1, Up_bilinear(phi_l2))`` at level ``l1``'s resolution, one D-dim vector
per patch (D = C_l1 + C_l2; 152 on EfficientNet-Lite0, 1536 on Wide-ResNet-50-2). The paper's
adaptive average pooling of each level's channels to a common size is not applied (anomalib
does not apply it either).

Memory (per task t, with ``N_t`` the new task's patch features):
- new coreset ``C_t = greedy_coreset(N_t, floor(coreset_ratio * |N_t|))`` (k-center greedy,
  ratio 0.1 as anomalib's default; the paper's random projection of the features for the
  selection only, ``projection_eps`` 0.9 as anomalib);
- ``memory="growing"``: ``M_t = M_{t-1} ∪ C_t`` (the continual literature's setting: nothing
  is forgotten, memory grows with every task);
- ``memory="budget"``: ``M_t = greedy_coreset(M_{t-1} ∪ C_t, min(memory_budget, |M_{t-1}| +
  |C_t|))``: a fixed total size, the old bank and the new coreset competing for it.

Scores: ``s(p) = min_{m in M} ||phi(p) - m||_2`` per patch (nearest neighbour, exact, torch
``cdist``); map ``A = G_sigma=4(Up_bilinear(s))``; image score = max of A, the convention of every
cl-bench detector (docs/detectors.md). The paper's image score, ``max_p s(p)`` reweighted by the
softmax of the nearest bank entry's neighbourhood, is not applied: it would score PatchCore
unlike the others. Before the first fit the bank is empty and the map is 0 everywhere (chance
AUROC in the untrained row).

State: the bank is the buffer ``memory_bank`` (M, D) in ``state_dict()`` (checkpoints and resume
carry it; its size varies, so loading resizes it first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal, get_args

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from strategies.detectors.base import AnomalyDetector, DetectorOutput, LossResult
from strategies.detectors.maps import (
    DEFAULT_SIGMA,
    float32_outside_autocast,
    gaussian_blur,
    upsample,
)
from strategies.detectors.memory_bank import greedy_coreset, nearest_neighbor_distances
from strategies.detectors.registry import DetectorSpec, SmoothedMapOptions, register_detector
from strategies.palette import OKABE_ITO

MemoryMode = Literal["growing", "budget"]
MEMORY_MODES: tuple[str, ...] = get_args(MemoryMode)
#: a teacher level, 1-based (every backbone of strategies.teachers.backbones has three)
TeacherLevel = Annotated[int, Field(ge=1, le=3)]


@float32_outside_autocast
def locally_aware_features(levels: list[Tensor]) -> Tensor:
    """``concat_c(AvgPool3x3(f_1), Up(AvgPool3x3(f_2)), ...)`` at the first level's resolution:
    (B, sum C_l, h_1, w_1)."""
    pooled = [F.avg_pool2d(f, kernel_size=3, stride=1, padding=1) for f in levels]
    size = pooled[0].shape[-2:]
    resized = [pooled[0]] + [F.interpolate(p, size=size, mode="bilinear", align_corners=False)
                             for p in pooled[1:]]
    return torch.cat(resized, dim=1)


def flatten_patches(embedding: Tensor) -> Tensor:
    """(B, D, h, w) -> (B*h*w, D), patches of an image contiguous in row-major order."""
    return embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1])


class PatchCore(AnomalyDetector):
    """Memory-bank detector on the frozen teacher (formulas in the module docstring)."""

    name = "patchcore"
    learns_without_gradients = True

    def __init__(self, teacher: nn.Module, levels: tuple[int, int] = (2, 3),
                 coreset_ratio: float = 0.1, projection_eps: float | None = 0.9,
                 memory: str = "growing", memory_budget: int | None = None,
                 sigma: float = DEFAULT_SIGMA) -> None:
        super().__init__(teacher)
        n_levels = len(teacher.channels)
        levels = tuple(int(v) for v in levels)
        if len(levels) != 2 or not 1 <= levels[0] < levels[1] <= n_levels:
            raise ValueError(f"levels {levels} must be two increasing teacher levels in "
                             f"1..{n_levels}")
        if not 0.0 < coreset_ratio <= 1.0:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if projection_eps is not None and not 0.0 < projection_eps < 1.0:
            raise ValueError(f"projection_eps must be in (0, 1) or null, got {projection_eps}")
        if memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, got {memory!r}")
        if memory == "budget" and (memory_budget is None or memory_budget < 1):
            raise ValueError("memory: budget needs memory_budget, the total number of patch "
                             "features kept (e.g. memory_budget: 2000)")
        if memory == "growing" and memory_budget is not None:
            raise ValueError("memory_budget applies to memory: budget only; remove it or set "
                             "memory: budget")
        self.levels = levels
        self.coreset_ratio = float(coreset_ratio)
        self.projection_eps = projection_eps
        self.memory = memory
        self.memory_budget = memory_budget
        self.sigma = float(sigma)
        dim = sum(teacher.channels[i - 1] for i in levels)
        self.register_buffer("memory_bank", torch.zeros(0, dim))
        self.register_buffer("tasks_fitted", torch.zeros((), dtype=torch.long))

    # ---- features ---------------------------------------------------------------------------
    def forward(self, images: Tensor) -> DetectorOutput:
        return DetectorOutput(teacher=self.teacher_features(images), students={})

    def embedding(self, output: DetectorOutput) -> Tensor:
        """Locally aware patch features (B, D, h, w) of the chosen teacher levels."""
        return locally_aware_features([output.teacher[i - 1] for i in self.levels])

    # ---- learning -----------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, batches: Iterable[Tensor]) -> None:
        """Add one task: subsample its patch features and update the bank (module docstring)."""
        new = [flatten_patches(self.embedding(self(images))) for images in batches]
        if not new:
            raise ValueError("PatchCore.fit received no images")
        features = torch.cat(new).to(self.memory_bank.dtype)
        size = max(1, int(self.coreset_ratio * features.shape[0]))
        coreset = features[greedy_coreset(features, size, projection_eps=self.projection_eps)]
        bank = torch.cat([self.memory_bank, coreset])
        if self.memory == "budget" and bank.shape[0] > self.memory_budget:
            bank = bank[greedy_coreset(bank, self.memory_budget,
                                       projection_eps=self.projection_eps)]
        self.memory_bank = bank.contiguous()
        self.tasks_fitted += 1

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        raise NotImplementedError("PatchCore learns without gradients; it has no loss (fit)")

    # ---- scoring ------------------------------------------------------------------------------
    @float32_outside_autocast
    def patch_scores(self, output: DetectorOutput) -> Tensor:
        """Nearest-neighbour distance of every patch to the bank, (B, 1, h, w); zeros while the
        bank is empty."""
        embedding = self.embedding(output)
        b, _, h, w = embedding.shape
        if self.memory_bank.shape[0] == 0:
            return embedding.new_zeros(b, 1, h, w)
        distances, _ = nearest_neighbor_distances(flatten_patches(embedding), self.memory_bank)
        return distances.reshape(b, 1, h, w)

    def anomaly_map_from_output(self, output: DetectorOutput,
                                image_size: tuple[int, int]) -> Tensor:
        return gaussian_blur(upsample(self.patch_scores(output), tuple(image_size)), self.sigma)

    # ---- state ----------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        saved = state_dict.get(prefix + "memory_bank")
        if isinstance(saved, Tensor) and saved.dim() == 2:
            # the bank's size varies with the tasks fitted: take the saved shape first
            self.memory_bank = self.memory_bank.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def memory_stats(self) -> dict[str, float]:
        bank = self.memory_bank
        return {**super().memory_stats(), "memory_bank_patches": int(bank.shape[0]),
                "memory_bank_mb": round(bank.numel() * bank.element_size() / 2**20, 3)}


class PatchCoreOptions(SmoothedMapOptions):
    """PatchCore's options (Roth et al. 2022; anomalib's values by default)."""

    levels: tuple[TeacherLevel, TeacherLevel] = Field(
        (2, 3), description="two teacher levels (1-based, increasing) whose 3x3-pooled features "
        "are concatenated at the first's resolution")
    coreset_ratio: float = Field(
        0.1, gt=0, le=1, description="share of a task's patch features kept by the greedy "
        "coreset (0.1 as anomalib; the paper uses 0.01-0.25)")
    projection_eps: float | None = Field(
        0.9, gt=0, lt=1, description="Johnson-Lindenstrauss eps of the random projection used "
        "to choose the coreset (anomalib 0.9); null = choose on the full features")
    memory: MemoryMode = Field(
        "growing", description="growing: the bank keeps every task's coreset; budget: coreset "
        "of old bank + new coreset, at most memory_budget")
    memory_budget: int | None = Field(None, ge=1, description="memory: budget: total patch "
                                      "features kept")

    @model_validator(mode="after")
    def _consistent(self) -> PatchCoreOptions:
        if self.levels[0] >= self.levels[1]:
            raise ValueError(f"levels={list(self.levels)}: must be two increasing teacher "
                             "levels, e.g. [2, 3]")
        if self.memory == "budget" and self.memory_budget is None:
            raise ValueError("memory: budget needs memory_budget, the total number of patch "
                             "features kept (e.g. memory_budget: 2000)")
        if self.memory == "growing" and self.memory_budget is not None:
            raise ValueError("memory_budget applies to memory: budget only; remove it or set "
                             "memory: budget")
        return self


register_detector(DetectorSpec(
    "patchcore", PatchCore, PatchCoreOptions,
    "memory bank of locally aware patch features, nearest-neighbour score, no gradients "
    "(Roth et al., CVPR 2022)",
    color=OKABE_ITO["orange"]))
