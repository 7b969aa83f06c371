"""The hybrid: both branches in the fused map, weights in the loss parts, calibration, attention."""

from __future__ import annotations

import pytest
import torch

from strategies.detectors import build_detector
from strategies.detectors.forward_student import ChannelAttention

OPTIONS = {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1,
           "student_blocks": [1, 1, 1], "student_width": 64}


def hybrid(**extra):
    torch.manual_seed(0)
    detector = build_detector("hybrid", "efficientnet_lite0", "none", **{**OPTIONS, **extra})
    return detector.eval()


@pytest.mark.parametrize("branch", ["forward_student", "reverse"])
@pytest.mark.parametrize("normalization", ["standardize", "none"])
def test_fused_map_changes_when_either_branch_changes(branch: str, normalization: str) -> None:
    detector = hybrid(fusion_normalization=normalization)
    images = torch.randn(2, 3, 64, 64)
    detector.calibrate([images])
    before = detector.anomaly_map(images)
    with torch.no_grad():
        for p in getattr(detector, branch).parameters():
            p.add_(0.05 * torch.randn_like(p))
    after = detector.anomaly_map(images)
    assert (after - before).abs().max() > 1e-4


def test_fused_map_is_the_alpha_mix_of_standardised_branch_maps() -> None:
    detector = hybrid(fusion_alpha=0.25)
    images = torch.randn(2, 3, 64, 64)
    detector.calibrate([images])
    output = detector(images)
    maps = detector.branch_anomaly_maps(output, (64, 64))
    # smoothing and upsampling are linear: fused = 0.25 reverse + 0.75 forward
    torch.testing.assert_close(maps["fused"], 0.25 * maps["reverse"] + 0.75 * maps["forward"],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(detector.anomaly_map(images), maps["fused"])


def test_calibration_standardises_training_maps() -> None:
    detector = hybrid(fusion_normalization="standardize")
    images = torch.randn(4, 3, 64, 64)
    assert not bool(detector.calibrated)
    assert torch.equal(detector.map_std, torch.ones(2, 3))
    detector.calibrate([(images, torch.zeros(4))])
    assert bool(detector.calibrated)
    z = detector.normalized_level_maps(detector(images))
    for branch_maps in z.values():
        for m in branch_maps:
            assert abs(m.mean().item()) < 1e-3
            assert m.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-3)
    assert {"map_mean", "map_std", "calibrated"} <= set(detector.state_dict())


@pytest.mark.parametrize("scheme", ["fixed", "uncertainty", "dwa"])
def test_loss_parts_hold_branch_losses_and_weights(scheme: str) -> None:
    detector = hybrid(weighting=scheme, fixed_lambda=0.25).train()
    result = detector.loss(torch.randn(2, 3, 64, 64))
    parts = result.parts
    assert set(parts) == {"loss_forward", "loss_reverse", "weight_forward", "weight_reverse"}
    if scheme == "fixed":
        assert (parts["weight_forward"], parts["weight_reverse"]) == (0.25, 0.75)
        expected = 0.25 * parts["loss_forward"] + 0.75 * parts["loss_reverse"]
        assert result.total.item() == pytest.approx(expected, rel=1e-5)
    else:
        assert parts["weight_forward"] == parts["weight_reverse"] == 1.0
    detector.on_epoch_end()


def test_channel_attention_is_registered_and_trained() -> None:
    detector = hybrid().train()
    attention = [m for m in detector.forward_student.modules() if isinstance(m, ChannelAttention)]
    assert len(attention) == 3  # one per bottleneck block (blocks [1, 1, 1])
    names = [n for n, _ in detector.named_parameters() if ".attention." in n]
    assert names and all(n in detector.state_dict() for n in names)
    weight = attention[0].mlp[0].weight
    before = weight.detach().clone()
    images = torch.randn(2, 3, 64, 64)
    # the same module (same weights) answers every forward pass
    torch.testing.assert_close(detector.forward_student(images)[0],
                               detector.forward_student(images)[0])
    optimizer = torch.optim.SGD(detector.trainable_parameters(), lr=0.1)
    detector.loss(images).total.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(weight, before)


def test_default_forward_student_is_the_seeds_on_wide_resnet() -> None:
    from strategies.detectors.forward_student import ForwardStudent

    student = ForwardStudent((256, 512, 1024))
    assert student.planes == (64, 128, 256)
    assert [len(s) for s in student.stages] == [2, 3, 6]
    assert student.stages[0][0].conv2.out_channels == 128  # width_per_group 128
    assert all(isinstance(p, torch.nn.Identity) for p in student.projections)
