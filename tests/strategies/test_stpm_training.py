"""STPM's training loss at the official code's scale and its student's BatchNorm momentum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from strategies.detectors import build_detector
from strategies.detectors.base import DetectorOutput


def test_loss_is_the_official_batch_sum() -> None:
    """L = sum_l (0.5 / (h_l w_l)) * MSE_sum(t^_l, s^_l) over the whole batch (the official
    STFPM code and anomalib), written out here with F.normalize; the batch mean would be 1/B
    of it."""
    torch.manual_seed(0)
    detector = build_detector("stpm", backbone="efficientnet_lite0", weights="none")
    shapes = [(3, 24, 8, 8), (3, 40, 4, 4), (3, 112, 2, 2)]
    teacher = [torch.randn(s) for s in shapes]
    student = [torch.randn(s) for s in shapes]
    expected = sum(0.5 / (t.shape[2] * t.shape[3])
                   * F.mse_loss(F.normalize(t), F.normalize(s), reduction="sum")
                   for t, s in zip(teacher, student, strict=True))
    got = detector.compute_loss(DetectorOutput(teacher=teacher, students={"forward": student}))
    assert float(got.total) == pytest.approx(float(expected), rel=1e-5)


def test_lite0_student_batchnorm_uses_pytorch_momentum() -> None:
    detector = build_detector("stpm", backbone="efficientnet_lite0", weights="none")
    momenta = {m.momentum for m in detector.student.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.1}
    # the teacher is left as built (eval mode: its momentum is never used)
    teacher = [m.momentum for m in detector.teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    assert teacher == pytest.approx([0.01] * len(teacher))
