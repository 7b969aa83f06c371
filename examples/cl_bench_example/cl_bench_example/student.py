"""``tiny_student``: a tiny trainable detector registered through an entry point.

A 1x1 convolution ``W`` (the student) predicts the teacher's level-2 features from its level-1
features, average-pooled to level 2's resolution: ``s(p) = W * Pool(t_1)(p)``. Training
minimises the feature mean squared error ``L = mean_{b,c,h,w} (s - t_2)^2`` by gradients (the
``compute_loss`` path of the detector contract, like STPM's feature matching, Wang et al., BMVC
2021, on one level and without the channel normalisation). The map is the per-pixel squared
distance ``||s(p) - t_2(p)||_2^2``, upsampled to the image and smoothed like every cl-bench map:
where the normal images' level-1 to level-2 relation does not hold, the student is wrong.
It has no options, so it needs none of the option machinery.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from strategies.detectors import AnomalyDetector, DetectorOutput, DetectorSpec, LossResult
from strategies.detectors.maps import DEFAULT_SIGMA, gaussian_blur, upsample

#: the teacher level the student predicts (1-based) and the one it reads
TARGET_LEVEL, INPUT_LEVEL = 2, 1


class TinyStudent(AnomalyDetector):
    name = "tiny_student"

    def __init__(self, teacher) -> None:
        super().__init__(teacher)
        channels = teacher.channels
        self.student = nn.Conv2d(channels[INPUT_LEVEL - 1], channels[TARGET_LEVEL - 1], 1)

    def forward(self, images: Tensor) -> DetectorOutput:
        teacher = self.teacher_features(images)
        target = teacher[TARGET_LEVEL - 1]
        pooled = F.adaptive_avg_pool2d(teacher[INPUT_LEVEL - 1], target.shape[-2:])
        return DetectorOutput(teacher=teacher, students={"forward": [self.student(pooled)]})

    def compute_loss(self, output: DetectorOutput) -> LossResult:
        prediction = output.students["forward"][0]
        total = F.mse_loss(prediction.float(), output.teacher[TARGET_LEVEL - 1].float())
        return LossResult(total=total, parts={"loss_mse": float(total.detach())})

    def anomaly_map_from_output(self, output: DetectorOutput, image_size) -> Tensor:
        prediction = output.students["forward"][0].float()
        target = output.teacher[TARGET_LEVEL - 1].float()
        distance = (prediction - target).pow(2).sum(dim=1, keepdim=True)
        return gaussian_blur(upsample(distance, tuple(image_size)), DEFAULT_SIGMA)


SPEC = DetectorSpec(
    "tiny_student", TinyStudent,
    description="1x1-conv student predicting teacher level 2 from level 1 (example plugin)")
