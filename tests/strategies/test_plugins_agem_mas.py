"""A-GEM's memory pass leaves BatchNorm statistics alone; MAS importances are per-image
absolute gradients (Aljundi et al., ECCV 2018); SI's importances are clipped at 0 by default."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from strategies.continual.agem import SeededAGEMPlugin
from strategies.continual.builtin_specs import SIOptions, make_si_plugins
from strategies.continual.mas import per_image_importance
from strategies.continual.si import SIPlugin


class TinyBN(nn.Module):
    """conv -> BatchNorm -> mean: a model whose running statistics a forward in train mode moves."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def _criterion(out: torch.Tensor, _: object = None) -> torch.Tensor:
    return out.pow(2).mean()


def _train_step(model: TinyBN, images: torch.Tensor, plugin: SeededAGEMPlugin | None) -> None:
    """One training iteration as Avalanche runs it: (memory pass), forward, backward, step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = SimpleNamespace(model=model, optimizer=optimizer, device="cpu",
                               _criterion=_criterion)
    model.train()
    if plugin is not None:
        plugin.before_training_iteration(strategy)
    optimizer.zero_grad()
    _criterion(model(images)).backward()
    if plugin is not None:
        plugin.after_backward(strategy)
    optimizer.step()


def test_agem_memory_pass_leaves_batchnorm_statistics_unchanged() -> None:
    torch.manual_seed(0)
    current = torch.randn(4, 3, 8, 8)
    memory = 5.0 + 3.0 * torch.randn(4, 3, 8, 8)  # an old task with other statistics
    with_memory, without = TinyBN(), TinyBN()
    without.load_state_dict(with_memory.state_dict())
    plugin = SeededAGEMPlugin(patterns_per_experience=4, sample_size=4, seed=0)
    plugin.buffers = [memory]  # non-empty: the memory pass runs
    plugin.sample_from_memory = lambda: (memory, torch.zeros(4), torch.zeros(4, dtype=torch.long))
    _train_step(with_memory, current, plugin)
    _train_step(without, current, None)
    assert plugin.reference_gradients.abs().sum() > 0  # the memory pass did run
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(with_memory.bn, key), getattr(without.bn, key),
                                   rtol=0, atol=0)


def test_mas_importance_is_the_mean_of_per_image_absolute_gradients() -> None:
    """f(x) = w x + b on scalars: d||f(x)||^2 / db = 2 (w x + b) = +2 and -2 for x = +1 and
    x = -1 (w = 1, b = 0). Per image |.| averages to 2; the |.| of the batch mean is 0."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    batches = [torch.tensor([[1.0], [-1.0]])]
    importance = per_image_importance(model, dict(model.named_parameters()), batches)
    assert importance["bias"].item() == 2.0
    # weight: d/dw (w x)^2 = 2 w x^2 = 2 for both images
    assert importance["weight"].item() == 2.0


def test_si_importances_are_clipped_at_zero_by_default() -> None:
    """A task whose steps raised its loss on balance has a negative path integral w; SI's
    importance is max(0, w / (Delta^2 + xi)) unless ``importance_min: null``."""
    assert SIOptions().importance_min == 0.0
    results = {}
    for importance_min in (0.0, None):
        (plugin,) = make_si_plugins(SIOptions(importance_min=importance_min), seed=0)
        assert isinstance(plugin, SIPlugin)
        model = nn.Linear(1, 2, bias=False)
        strategy = SimpleNamespace(model=model)
        plugin.task_start = {"weight": model.weight.detach().clone() - 1.0}
        plugin.path = {"weight": torch.tensor([[-0.5], [0.5]])}
        plugin.after_training_exp(strategy)
        results[importance_min] = plugin.omega["weight"].flatten()
    assert results[0.0][0].item() == 0.0 and results[0.0][1].item() > 0
    assert results[None][0].item() < 0
