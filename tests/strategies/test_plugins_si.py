"""Synaptic Intelligence (Zenke et al. 2017) against the path integral written out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from strategies.continual.plugins import SIPlugin, load_plugin_state, plugin_state
from strategies.detectors.weighting import UncertaintyWeighting

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LR, STEPS, C, XI = 0.1, 5, 0.7, 1e-3


class Quadratic(nn.Module):
    """One parameter vector; task loss ``0.5 * ||theta - target||^2``; plus a loss weighting
    module whose parameters SI must leave out."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.0, 1.0, -2.0, 0.5]))
        self.weighting = UncertaintyWeighting(("a", "b"))

    def task_loss(self, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((self.theta - target) ** 2).sum() + self.weighting.log_variances.sum()


def train_task(plugin: SIPlugin, model: Quadratic, target: torch.Tensor) -> None:
    """What Avalanche's training loop calls, in its order, with plain SGD."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    strategy = SimpleNamespace(model=model, loss=None)
    plugin.before_training_exp(strategy)
    for _ in range(STEPS):
        optimizer.zero_grad()
        strategy.loss = model.task_loss(target)
        plugin.before_backward(strategy)
        strategy.loss.backward()
        plugin.before_update(strategy)
        optimizer.step()
        plugin.after_update(strategy)
    plugin.after_training_exp(strategy)


def by_hand(theta: torch.Tensor, target: torch.Tensor, omega: torch.Tensor,
            star: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SGD on ``0.5||theta - target||^2 + C * sum omega (theta - star)^2``; returns the final
    theta and ``w = sum_steps -g_task * delta`` (g_task: gradient of the task loss only)."""
    w = torch.zeros_like(theta)
    for _ in range(STEPS):
        g_task = theta - target
        g_total = g_task + 2 * C * omega * (theta - star)
        delta = -LR * g_total
        w += -g_task * delta
        theta = theta + delta
    return theta, w


@pytest.mark.parametrize("device", DEVICES)
def test_si_importance_is_the_path_integral(device: str) -> None:
    model = Quadratic().to(device)
    plugin = SIPlugin(C, xi=XI)
    a = torch.tensor([1.0, -1.0, 0.0, 3.0], device=device)
    b = torch.tensor([-2.0, 2.0, 1.0, 0.0], device=device)
    start = model.theta.detach().clone()

    train_task(plugin, model, a)
    end1, w1 = by_hand(start, a, torch.zeros_like(start), start)
    omega1 = w1 / ((end1 - start) ** 2 + XI)
    assert set(plugin.omega) == {"theta"}  # the loss weighting is no student
    torch.testing.assert_close(plugin.omega["theta"], omega1)
    torch.testing.assert_close(plugin.theta_star["theta"], end1)
    assert plugin.omega["theta"].min() > 0.5  # not 0, not clipped at Avalanche's 0.001
    assert plugin.omega["theta"].device.type == device

    # task 2: the penalty pulls toward theta*, and w counts the task loss's gradient only
    penalty = plugin.penalty(model)
    torch.testing.assert_close(penalty, C * (omega1 * (model.theta - end1) ** 2).sum())
    assert float(penalty.detach()) == 0.0  # theta == theta* right after the task
    train_task(plugin, model, b)
    end2, w2 = by_hand(end1, b, omega1, end1)
    torch.testing.assert_close(model.theta.detach(), end2)
    torch.testing.assert_close(plugin.omega["theta"], omega1 + w2 / ((end2 - end1) ** 2 + XI))
    assert plugin.last_penalty > 0


def test_si_optional_clamp_and_state_round_trip(tmp_path) -> None:
    model = Quadratic()
    plugin = SIPlugin(C, xi=XI, importance_max=0.25)
    train_task(plugin, model, torch.tensor([1.0, -1.0, 0.0, 3.0]))
    assert plugin.omega["theta"].max() == 0.25

    path = tmp_path / "state.pt"
    torch.save(plugin_state(plugin), path)
    restored = SIPlugin(C, xi=XI)
    load_plugin_state(restored, torch.load(path, weights_only=True),
                      SimpleNamespace(device="cpu"))
    torch.testing.assert_close(restored.omega, plugin.omega)
    torch.testing.assert_close(restored.theta_star, plugin.theta_star)
    with torch.no_grad():
        model.theta.add_(0.3)
    assert float(restored.penalty(model).detach()) == pytest.approx(
        float(plugin.penalty(model).detach()))
    assert float(restored.penalty(model).detach()) > 0
