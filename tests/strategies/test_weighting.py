"""Loss weighting schemes behave as their formulas say."""

from __future__ import annotations

import math

import pytest
import torch

from strategies.detectors.weighting import build_weighting

NAMES = ("forward", "reverse")


def losses(f: float, r: float) -> dict[str, torch.Tensor]:
    return {"forward": torch.tensor(f), "reverse": torch.tensor(r)}


def test_fixed_weighting() -> None:
    w = build_weighting("fixed", NAMES, fixed_lambda=0.3)
    total, weights = w(losses(2.0, 4.0))
    assert total.item() == pytest.approx(0.3 * 2 + 0.7 * 4)
    assert weights.tolist() == pytest.approx([0.3, 0.7])
    with pytest.raises(ValueError):
        build_weighting("fixed", NAMES, fixed_lambda=1.5)


def test_uncertainty_weighting_formula_and_gradient() -> None:
    w = build_weighting("uncertainty", NAMES)
    with torch.no_grad():
        w.log_variances.copy_(torch.tensor([0.5, -1.0]))
    total, weights = w(losses(2.0, 4.0))
    expected = math.exp(-0.5) * 2 + 0.5 + math.exp(1.0) * 4 - 1.0
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert weights.tolist() == pytest.approx([math.exp(-0.5), math.exp(1.0)], rel=1e-6)
    total.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L
    assert w.log_variances.grad.tolist() == pytest.approx(
        [1 - math.exp(-0.5) * 2, 1 - math.exp(1.0) * 4], rel=1e-5)
    assert "log_variances" in dict(w.named_parameters())


def test_dwa_weights_follow_loss_ratios() -> None:
    w = build_weighting("dwa", NAMES, dwa_temperature=2.0)
    w.train()
    epochs = [(1.0, 1.0), (0.5, 0.9)]  # epoch means; forward loss halves, reverse drops 10 %
    for f, r in epochs:
        _, weights = w(losses(f, r))
        assert weights.tolist() == [1.0, 1.0]  # first two epochs: weights 1
        w.on_epoch_end()
    ratios = torch.tensor([0.5 / 1.0, 0.9 / 1.0])
    expected = 2 * torch.softmax(ratios / 2.0, 0)
    total, weights = w(losses(1.0, 1.0))
    torch.testing.assert_close(weights, expected)
    assert weights[1] > weights[0]  # the slower-improving loss gets more weight
    assert total.item() == pytest.approx(float(expected.sum()), rel=1e-6)
    state = w.state_dict()
    assert {"weights", "history", "epochs_seen"} <= set(state)


def test_dwa_ignores_losses_without_training() -> None:
    w = build_weighting("dwa", NAMES)
    w.eval()
    w(losses(5.0, 5.0))
    assert int(w.epoch_batches) == 0


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown weighting"):
        build_weighting("gradnorm", NAMES)
