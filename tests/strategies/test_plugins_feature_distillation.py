"""Feature distillation: 0 at identical weights in train mode, > 0 after drift, old copy's
BatchNorm statistics untouched, the detectors' cosine distance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from strategies.continual.feature_distillation import feature_distance
from strategies.continual.plugins import StudentDistillationPlugin, load_plugin_state, plugin_state
from strategies.detectors import build_detector
from strategies.detectors.base import DetectorOutput

CHEAP = {  # small students so the test stays fast (as in test_detectors.py)
    "stpm": {},
    "rd4ad": {"width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1},
    "hybrid": {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1], "ocbe_blocks": 1,
               "student_blocks": [1, 1, 1], "student_width": 16},
}


def running_stats(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running_" in k or "num_batches" in k}


@pytest.mark.parametrize("name", ["stpm", "rd4ad", "hybrid"])
def test_penalty_is_zero_at_identical_weights_and_grows_with_drift(name: str) -> None:
    torch.manual_seed(0)
    detector = build_detector(name, weights="none", **CHEAP[name]).train()
    x = torch.randn(4, 3, 64, 64)
    detector(x)  # one training-mode pass: running statistics differ from batch statistics
    plugin = StudentDistillationPlugin(alpha=2.0)
    strategy = SimpleNamespace(model=detector, mb_x=x, loss=torch.zeros(()))
    plugin.after_training_exp(strategy)
    stored = running_stats(plugin.previous)
    assert any(v.float().abs().sum() > 0 for v in stored.values())

    strategy.mb_output = detector(x)  # the current students' training forward (train mode)
    assert detector.training
    plugin.before_backward(strategy)
    assert abs(plugin.last_penalty) < 1e-6
    assert abs(float(strategy.loss.detach())) < 1e-6

    with torch.no_grad():
        for p in detector.parameters():
            p.add_(0.05 * torch.randn_like(p))
    strategy.mb_output = detector(x)
    penalty = plugin.penalty(strategy)
    assert float(penalty.detach()) > 1e-3
    assert penalty.requires_grad  # it trains the current students
    after = running_stats(plugin.previous)
    assert after.keys() == stored.keys()
    for key, value in stored.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)
    assert not any(p.requires_grad for p in plugin.previous.parameters())


def test_distance_is_the_mean_cosine_distance_summed_over_levels_and_branches() -> None:
    torch.manual_seed(1)
    shapes = [(2, 4, 8, 8), (2, 6, 4, 4)]
    a = {b: [torch.randn(s) for s in shapes] for b in ("forward", "reverse")}
    c = {b: [torch.randn(s) for s in shapes] for b in ("forward", "reverse")}
    expected = 0.0
    for branch in a:
        for x, y in zip(a[branch], c[branch], strict=True):
            cos = (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
            expected += float((1 - cos).mean())
    got = feature_distance(DetectorOutput([], a), DetectorOutput([], c))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # scale-free: multiplying the old features by 10 changes nothing
    scaled = {b: [10 * t for t in levels] for b, levels in c.items()}
    assert float(feature_distance(DetectorOutput([], a), DetectorOutput([], scaled))) == \
        pytest.approx(expected, rel=1e-5)


def test_restored_previous_copy_keeps_batch_statistics_mode(tmp_path) -> None:
    torch.manual_seed(0)
    detector = build_detector("stpm", weights="none").train()
    x = torch.randn(2, 3, 64, 64)
    detector(x)
    plugin = StudentDistillationPlugin()
    plugin.after_training_exp(SimpleNamespace(model=detector))
    path = tmp_path / "fd.pt"
    torch.save(plugin_state(plugin), path)
    restored = StudentDistillationPlugin()
    load_plugin_state(restored, torch.load(path, weights_only=True),
                      SimpleNamespace(model=detector, device="cpu"))
    norms = [m for m in restored.previous.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(m.training and not m.track_running_stats for m in norms)
    strategy = SimpleNamespace(model=detector, mb_x=x, mb_output=detector(x))
    assert abs(float(restored.penalty(strategy).detach())) < 1e-6
