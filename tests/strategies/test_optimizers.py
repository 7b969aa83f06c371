"""The students' optimizer: fused kernels give the foreach update up to rounding."""

from __future__ import annotations

import pytest
import torch

from strategies.errors import OptimizerError
from strategies.training.optimizers import build_optimizer


def _train(fused: bool, name: str) -> torch.Tensor:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    optimizer = build_optimizer(model.parameters(), name, lr=0.01, fused=fused)
    data = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        optimizer.zero_grad()
        model(data).pow(2).mean().backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_fused_matches_foreach_up_to_rounding(name: str) -> None:
    fused, plain = _train(True, name), _train(False, name)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def test_fused_flag_reaches_torch() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer(params, "adam", fused=True).defaults["fused"] is True
    assert not build_optimizer(params, "adam", fused=False).defaults.get("fused")


def test_unknown_optimizer_is_named() -> None:
    with pytest.raises(OptimizerError, match=r"'rmsprop'.*adam, adamw, sgd"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], "rmsprop")


def test_unsupported_fused_says_how_to_fix(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors")

    monkeypatch.setattr(torch.optim, "Adam", refuse)
    with pytest.raises(OptimizerError, match=r"train\.optimizer\.fused: false"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam", fused=True)
