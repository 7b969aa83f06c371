"""Loss weighting for multi-branch training: fixed, uncertainty (Kendall 2018), DWA (Liu 2019).

Each scheme is an :class:`nn.Module` whose whole state (learnable log-variances, the loss
history of DWA) lives in parameters and buffers, so it is saved with the detector's
``state_dict``. ``weighting(losses)`` returns ``(total, weights)`` for an ordered dict of
branch losses; ``on_epoch_end()`` is called once per epoch.

- ``fixed``: ``L = lambda * L_1 + (1 - lambda) * L_2`` (two branches; ``lambda`` weighs the
  first, the forward branch in the hybrid).
- ``uncertainty`` (Kendall, Gal & Cipolla, CVPR 2018): learnable ``s_k = log sigma_k^2``,
  ``L = sum_k exp(-s_k) L_k + s_k``; ``s_k`` start at 0 (weights 1) and train with the students.
  The reported weight of branch k is ``exp(-s_k)``.
- ``dwa`` (Dynamic Weight Average, Liu, Johns & Davison, CVPR 2019): with epoch-mean losses
  ``Lbar_k(t)``, ``r_k = Lbar_k(t-1) / Lbar_k(t-2)`` and
  ``w_k(t) = K exp(r_k / T) / sum_j exp(r_j / T)``, ``T = 2``; ``w_k = 1`` for the first two
  epochs. Losses are accumulated only in training mode with gradients enabled.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

WEIGHTING_SCHEMES = ("fixed", "uncertainty", "dwa")


class LossWeighting(nn.Module):
    """Base class: ``forward(losses) -> (total, weights)``, weights as a (K,) tensor."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(names)

    def forward(self, losses: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        stacked = self._stack(losses)
        weights = self.current_weights().to(stacked)
        return (weights * stacked).sum(), weights.detach()

    def _stack(self, losses: dict[str, Tensor]) -> Tensor:
        if tuple(losses) != self.names:
            raise KeyError(f"expected losses {self.names}, got {tuple(losses)}")
        return torch.stack([losses[name] for name in self.names])

    def current_weights(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Per-epoch update (DWA); a no-op for the other schemes."""


class FixedWeighting(LossWeighting):
    """``L = lambda * L_1 + (1 - lambda) * L_2``."""

    def __init__(self, names: tuple[str, ...], fixed_lambda: float = 0.5) -> None:
        super().__init__(names)
        if len(self.names) != 2 or not 0.0 <= fixed_lambda <= 1.0:
            raise ValueError(
                f"fixed weighting needs 2 losses and 0 <= fixed_lambda <= 1, got "
                f"{len(self.names)} losses and fixed_lambda={fixed_lambda}"
            )
        self.register_buffer("weights", torch.tensor([fixed_lambda, 1.0 - fixed_lambda]))

    def current_weights(self) -> Tensor:
        return self.weights


class UncertaintyWeighting(LossWeighting):
    """Kendall et al. 2018: ``L = sum_k exp(-s_k) L_k + s_k`` with learnable ``s_k``."""

    def __init__(self, names: tuple[str, ...], initial_log_variance: float = 0.0) -> None:
        super().__init__(names)
        self.log_variances = nn.Parameter(torch.full((len(self.names),), initial_log_variance))

    def forward(self, losses: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        stacked = self._stack(losses)
        s = self.log_variances.to(stacked)
        total = (torch.exp(-s) * stacked + s).sum()
        return total, torch.exp(-s).detach()

    def current_weights(self) -> Tensor:
        return torch.exp(-self.log_variances.detach())


class DynamicWeightAverage(LossWeighting):
    """Liu et al. 2019 (DWA), temperature ``T`` (2 in the paper)."""

    def __init__(self, names: tuple[str, ...], temperature: float = 2.0) -> None:
        super().__init__(names)
        if temperature <= 0:
            raise ValueError(f"dwa_temperature must be > 0, got {temperature}")
        k = len(self.names)
        self.temperature = float(temperature)
        self.register_buffer("weights", torch.ones(k))
        self.register_buffer("epoch_loss_sum", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("epoch_batches", torch.zeros((), dtype=torch.long))
        # history[0] = mean losses of epoch t-2, history[1] = of epoch t-1
        self.register_buffer("history", torch.zeros(2, k, dtype=torch.float64))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def forward(self, losses: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        stacked = self._stack(losses)
        if self.training and torch.is_grad_enabled():
            self.epoch_loss_sum += stacked.detach().to(self.epoch_loss_sum)
            self.epoch_batches += 1
        weights = self.weights.to(stacked)
        return (weights * stacked).sum(), weights.detach()

    def current_weights(self) -> Tensor:
        return self.weights

    def on_epoch_end(self) -> None:
        if int(self.epoch_batches) == 0:
            return
        mean = self.epoch_loss_sum / self.epoch_batches
        self.history[0] = self.history[1]
        self.history[1] = mean
        self.epochs_seen += 1
        self.epoch_loss_sum.zero_()
        self.epoch_batches.zero_()
        if int(self.epochs_seen) >= 2:
            ratios = self.history[1] / self.history[0].clamp_min(1e-12)
            k = len(self.names)
            self.weights.copy_((k * torch.softmax(ratios / self.temperature, dim=0)).float())


def build_weighting(scheme: str, names: tuple[str, ...], fixed_lambda: float = 0.5,
                    dwa_temperature: float = 2.0) -> LossWeighting:
    """The weighting ``scheme`` ("fixed" | "uncertainty" | "dwa") over the losses ``names``."""
    if scheme == "fixed":
        return FixedWeighting(names, fixed_lambda)
    if scheme == "uncertainty":
        return UncertaintyWeighting(names)
    if scheme == "dwa":
        return DynamicWeightAverage(names, dwa_temperature)
    raise ValueError(f"unknown weighting {scheme!r}; choose one of {', '.join(WEIGHTING_SCHEMES)}")
