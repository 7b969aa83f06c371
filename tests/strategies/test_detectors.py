"""Shapes, frozen teacher and options of every detector and backbone (random weights, 64 px)."""

from __future__ import annotations

import copy

import pytest
import torch

from strategies.detectors import (
    DETECTOR_OPTIONS,
    DetectorOptionError,
    available_detectors,
    build_detector,
)
from strategies.errors import WeightsError
from strategies.teachers.backbones import available_backbones, build_backbone, build_teacher

CHEAP = {  # small students so the unit tests stay fast
    "stpm": {},
    "rd4ad": {"width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1},
    "hybrid": {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1,
               "student_blocks": [1, 1, 1], "student_width": 64},
}


def test_registries() -> None:
    assert available_backbones() == ["efficientnet_lite0", "resnet18", "wide_resnet50_2"]
    assert available_detectors() == ["stpm", "rd4ad", "hybrid", "patchcore"]  # registration order
    assert {"weighting", "fixed_lambda", "dwa_temperature", "student_blocks", "student_width",
            "fusion_normalization", "fusion_alpha"} <= set(DETECTOR_OPTIONS["hybrid"])


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "wide_resnet50_2"])
def test_backbone_levels(name: str) -> None:
    backbone = build_backbone(name, "none")
    features = backbone(torch.randn(2, 3, 64, 64))
    assert len(features) == 3
    for f, c, s in zip(features, backbone.channels, backbone.strides, strict=True):
        assert f.shape == (2, c, 64 // s, 64 // s)
    assert backbone.strides == (4, 8, 16)


def test_efficientnet_imagenet_weights_load_offline() -> None:
    pretrained = build_teacher("efficientnet_lite0", "imagenet")
    random = build_teacher("efficientnet_lite0", "none")
    p = dict(pretrained.named_parameters())["conv_stem.weight"]
    assert not torch.equal(p, dict(random.named_parameters())["conv_stem.weight"])
    # ImageNet BatchNorm statistics, not the fresh (0, 1) ones
    assert pretrained.bn0.running_var.mean() != pytest.approx(1.0)


def test_weights_errors(tmp_path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        build_teacher("resnet18", tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(WeightsError, match="cannot read"):
        build_teacher("resnet18", bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"foo": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsError, match="does not fit"):
        build_teacher("resnet18", wrong)
    with pytest.raises(WeightsError, match="unknown backbone"):
        build_teacher("vgg16", "none")


def test_local_state_dict_file(tmp_path) -> None:
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(model.state_dict(), path)
    teacher = build_teacher("resnet18", path)
    assert torch.equal(teacher.stem[0].weight, model.conv1.weight)


@pytest.mark.parametrize(("ocbe_width", "ocbe_inner", "parameters"), [
    (None, 1024, 83_802_624),  # official RD4AD: BN_layer with width_per_group 128
    # anomalib 2.7 OCBE (width_per_group 64): its model counts 64_139_776, of which the unused
    # conv4/bn4 (1x1 4096 -> 2048, kept from the official code, never called) are 8_392_704
    (0.5, 512, 55_747_072),
])
def test_rd4ad_wide_resnet_student_size(ocbe_width, ocbe_inner, parameters) -> None:
    """Full-size WRN-50-2 reverse student: the OCBE inner width and the student's size."""
    from strategies.detectors.rd4ad import ReverseStudent

    student = ReverseStudent((256, 512, 1024), ocbe_width=ocbe_width)
    first = student.ocbe.compress[0]
    assert (first.conv1.in_channels, first.conv1.out_channels) == (3072, ocbe_inner)
    assert first.conv3.out_channels == 2048
    assert sum(p.numel() for p in student.parameters()) == parameters


@pytest.mark.parametrize("name", ["stpm", "rd4ad", "hybrid"])
@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet18"])
def test_detector_shapes(name: str, backbone: str) -> None:
    torch.manual_seed(0)
    detector = build_detector(name, backbone, "none", **CHEAP[name])
    images = torch.randn(2, 3, 64, 64)
    output = detector(images)
    for branch in output.students.values():
        assert [f.shape for f in branch] == [t.shape for t in output.teacher]
    result = detector.loss(images)
    assert result.total.ndim == 0 and torch.isfinite(result.total)
    assert result.parts
    detector.eval()
    maps = detector.anomaly_map(images)
    assert maps.shape == (2, 1, 64, 64)
    assert detector.image_scores(maps).shape == (2,)
    assert detector.num_trainable_parameters() > 0


def test_rd4ad_on_wide_resnet_channels() -> None:
    detector = build_detector("rd4ad", "wide_resnet50_2", "none", **CHEAP["rd4ad"])
    output = detector(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in output.students["reverse"]] == [256, 512, 1024]


def test_hybrid_passes_ocbe_width_to_its_reverse_student() -> None:
    options = {**CHEAP["hybrid"], "reverse_width": 1.0, "ocbe_width": 0.5}
    detector = build_detector("hybrid", "efficientnet_lite0", "none", **options)
    c3 = detector.teacher.channels[2]
    first = detector.reverse.ocbe.compress[0]
    assert first.conv1.out_channels == max(8, round(c3 * 0.5))
    assert first.conv3.out_channels == 2 * c3


@pytest.mark.parametrize("name", ["stpm", "rd4ad", "hybrid"])
def test_teacher_frozen_and_hidden(name: str) -> None:
    torch.manual_seed(0)
    detector = build_detector(name, "efficientnet_lite0", "none", **CHEAP[name])
    teacher = detector.teacher
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in detector.parameters()}
    assert all(not p.requires_grad for p in teacher.parameters())
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert not any(k.startswith(("teacher", "_teacher")) for k in detector.state_dict())
    detector.train()
    assert not teacher.training and detector.training
    optimizer = torch.optim.Adam(detector.trainable_parameters(), lr=0.01)
    result = detector.loss(torch.randn(4, 3, 64, 64))
    optimizer.zero_grad()
    result.total.backward()
    optimizer.step()
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():  # weights and BN running stats unchanged
        assert torch.equal(value, teacher_state[key]), key
    clone = copy.deepcopy(detector)
    assert clone.teacher is teacher


def test_stpm_student_is_teacher_architecture_with_fresh_weights() -> None:
    torch.manual_seed(0)
    detector = build_detector("stpm", "efficientnet_lite0", "imagenet")
    assert type(detector.student) is type(detector.teacher)
    assert not torch.equal(detector.student.conv_stem.weight, detector.teacher.conv_stem.weight)


def test_option_validation() -> None:
    with pytest.raises(DetectorOptionError, match="no option 'colour'"):
        build_detector("rd4ad", "efficientnet_lite0", "none", colour=1)
    with pytest.raises(DetectorOptionError, match="must be one of"):
        build_detector("hybrid", "efficientnet_lite0", "none", weighting="gradnorm")
    with pytest.raises(DetectorOptionError, match="unknown detector"):
        build_detector("padim", "efficientnet_lite0", "none")
    with pytest.raises(DetectorOptionError, match="fusion_alpha"):
        build_detector("hybrid", "efficientnet_lite0", "none", fusion_alpha=2.0)


@pytest.mark.parametrize("size", [33, 50, 100])
@pytest.mark.parametrize("name", ["hybrid", "stpm", "rd4ad", "patchcore"])
def test_every_detector_trains_and_maps_at_any_image_size(name: str, size: int) -> None:
    # sides that are not multiples of 32 made the reverse student's levels differ from the
    # teacher's (e.g. 12 against 16 at 50 px)
    torch.manual_seed(0)
    detector = build_detector(name, "resnet18", "none", **CHEAP.get(name, {}))
    images = torch.randn(2, 3, size, size)
    if name == "patchcore":
        detector.fit([images])
    else:
        loss = detector.loss(images).total
        assert torch.isfinite(loss)
        loss.backward()
    detector.eval()
    with torch.no_grad():
        maps = detector.anomaly_map(images)
    assert maps.shape == (2, 1, size, size) and torch.isfinite(maps).all()


@pytest.mark.parametrize("size", [32, 64, 96])
@pytest.mark.parametrize("name", ["hybrid", "rd4ad"])
def test_multiples_of_32_are_never_resized(name: str, size: int, monkeypatch) -> None:
    # sizes that worked before give bit-identical results: the alignment does nothing there
    import torch.nn.functional as F

    from strategies.detectors import rd4ad

    calls = []
    monkeypatch.setattr(rd4ad.F, "interpolate",
                        lambda *a, **k: calls.append(k) or F.interpolate(*a, **k))
    detector = build_detector(name, "resnet18", "none", **CHEAP[name])
    output = detector(torch.randn(2, 3, size, size))
    reverse = output.students["reverse"]
    assert [r.shape for r in reverse] == [t.shape for t in output.teacher]
    assert calls == []
