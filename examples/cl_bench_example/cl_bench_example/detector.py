"""``mean_distance``: a tiny gradient-free detector registered through an entry point.

Per task it adds the training images' level-2 teacher features to a running per-position sum;
the map is ``||f(p) - mu(p)||_2`` (distance to the mean feature at that position), upsampled and
smoothed like every cl-bench map. It learns without gradients (``fit``), so it exercises the
gradient-free path of the detector contract.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from strategies.detectors import (
    AnomalyDetector,
    DetectorOutput,
    DetectorSpec,
    SmoothedMapOptions,
)
from strategies.detectors.maps import gaussian_blur, upsample


class MeanDistance(AnomalyDetector):
    name = "mean_distance"
    learns_without_gradients = True

    def __init__(self, teacher, level: int = 2, sigma: float = 4.0) -> None:
        super().__init__(teacher)
        self.level = level
        self.sigma = sigma
        self.register_buffer("feature_sum", torch.zeros(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, images: Tensor) -> DetectorOutput:
        return DetectorOutput(teacher=self.teacher_features(images), students={})

    def fit(self, batches) -> None:
        for images in batches:
            features = self(images).teacher[self.level - 1].float()
            if self.feature_sum.numel() == 0:
                self.feature_sum = torch.zeros_like(features[0])
            self.feature_sum += features.sum(dim=0)
            self.count += features.shape[0]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        saved = state_dict.get(prefix + "feature_sum")
        if saved is not None:
            self.feature_sum = self.feature_sum.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def anomaly_map_from_output(self, output: DetectorOutput, image_size) -> Tensor:
        features = output.teacher[self.level - 1].float()
        if int(self.count) == 0:
            distance = features.new_zeros(features.shape[0], 1, *features.shape[-2:])
        else:
            mean = self.feature_sum / self.count
            distance = torch.linalg.vector_norm(features - mean, dim=1, keepdim=True)
        return gaussian_blur(upsample(distance, tuple(image_size)), self.sigma)


class MeanDistanceOptions(SmoothedMapOptions):
    """``level`` and, from :class:`SmoothedMapOptions`, ``sigma`` (checked when the config is)."""

    level: int = Field(2, ge=1, le=3, description="teacher level whose features are averaged")


SPEC = DetectorSpec(
    "mean_distance", MeanDistance, MeanDistanceOptions,
    "distance to the mean teacher feature per position (example plugin)")
