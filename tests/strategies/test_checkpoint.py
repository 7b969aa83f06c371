"""Checkpoint round trip and clear errors on truncated or foreign files."""

from __future__ import annotations

import pytest
import torch

from strategies.detectors import build_detector
from strategies.errors import CheckpointError
from strategies.training.checkpoint import load_detector_state, save_detector

OPTIONS = {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1,
           "student_blocks": [1, 1, 1], "student_width": 64, "weighting": "uncertainty"}


def hybrid(seed: int):
    torch.manual_seed(seed)
    return build_detector("hybrid", "efficientnet_lite0", "none", **OPTIONS)


def trained_hybrid(seed: int):
    detector = hybrid(seed)
    optimizer = torch.optim.Adam(detector.trainable_parameters(), lr=0.01)
    images = torch.randn(4, 3, 64, 64)
    for _ in range(2):
        detector.train()
        optimizer.zero_grad()
        detector.loss(images).total.backward()
        optimizer.step()
    detector.calibrate([images])
    return detector, images


def test_round_trip_gives_identical_maps(tmp_path) -> None:
    detector, images = trained_hybrid(0)
    path = save_detector(detector, tmp_path / "ckpt" / "task0.pt", {"task": 0, "name": "x"})
    assert not list(path.parent.glob("*.tmp"))
    fresh = hybrid(1)
    fresh.set_teacher(detector.teacher)  # random teachers differ; share the same one
    extra = load_detector_state(fresh, path)
    assert extra == {"task": 0, "name": "x"}
    assert torch.equal(fresh.weighting.log_variances, detector.weighting.log_variances)
    assert bool(fresh.calibrated)
    fresh.eval()
    detector.eval()
    torch.testing.assert_close(fresh.anomaly_map(images), detector.anomaly_map(images),
                               rtol=0, atol=0)
    payload = torch.load(path, weights_only=True)
    assert not any("teacher" in k for k in payload["state_dict"])


def test_truncated_and_foreign_files(tmp_path) -> None:
    detector = hybrid(0)
    path = save_detector(detector, tmp_path / "a.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_detector_state(detector, truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a cl-bench detector checkpoint"):
        load_detector_state(detector, foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_detector_state(detector, tmp_path / "missing.pt")
    rd4ad = build_detector("rd4ad", "efficientnet_lite0", "none", width=0.25)
    with pytest.raises(CheckpointError, match="holds a 'hybrid' detector"):
        load_detector_state(rd4ad, path)
    other = build_detector("hybrid", "efficientnet_lite0", "none",
                           **{**OPTIONS, "student_width": 128})
    with pytest.raises(CheckpointError, match="does not fit"):
        load_detector_state(other, path)
    with pytest.raises(CheckpointError, match="extra"):
        save_detector(detector, tmp_path / "b.pt", {"bad": object()})
