"""Synaptic Intelligence (Zenke, Poole & Ganguli, "Continual Learning Through Synaptic
Intelligence", ICML 2017) for the students of a distillation detector.

Written here instead of using Avalanche 0.6's ``SynapticIntelligencePlugin``, which keeps its
"previous weights" as ``param.detach().cpu().flatten()``: on the CPU that is a view of the live
parameter, so every measured weight change (and every importance) is 0, and it clips the
importances at a hard-coded 0.001.

For every trainable parameter ``theta_k`` of the students (the teacher is hidden from
``parameters()``; the hybrid's loss-weighting parameters are not a student and are left out):

- per optimizer step, with ``g_k`` the gradient of the task loss alone (the total gradient minus
  SI's own penalty gradient ``2 c Omega_k (theta_k - theta*_k)``), taken before the step, and
  ``delta_k`` the change the step actually made (a copy, not a view):
  ``w_k += -g_k * delta_k`` (the path integral of the task loss's decrease);
- at the end of task ``mu``, with ``Delta_k`` the total change over that task:
  ``Omega_k += w_k / (Delta_k^2 + xi)``; then ``w_k = 0`` and ``theta*_k = theta_k``;
- while training every later task, the loss gains ``c * sum_k Omega_k (theta_k - theta*_k)^2``.

``Omega_k`` is clipped at 0 by default (``importance_min = 0``): where the optimizer's steps
raised the task loss on balance the path integral is negative, and a negative ``Omega_k`` would
reward moving away from ``theta*_k``, leaving the penalty without a lower bound (Zenke et al.
derive ``Omega_k`` as a non-negative importance). ``importance_min: null`` keeps negative
values; ``importance_max`` adds an upper clamp (off by default).
All tensors live on the parameters' device; only ``Omega`` and ``theta*`` carry over tasks
(:meth:`SIPlugin.state_dict` / :meth:`SIPlugin.load_state_dict`).
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import Tensor, nn

from strategies.detectors.weighting import LossWeighting


def student_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters by name, without those of loss-weighting modules."""
    excluded = {name for name, module in model.named_modules()
                if isinstance(module, LossWeighting)}
    return {
        name: p for name, p in model.named_parameters()
        if p.requires_grad and not any(name.startswith(f"{prefix}.") for prefix in excluded)
    }


class SIPlugin(SupervisedPlugin):
    """Synaptic Intelligence: path-integral importances and a quadratic penalty (see module)."""

    def __init__(self, si_lambda: float, xi: float = 1e-3, importance_min: float | None = 0.0,
                 importance_max: float | None = None) -> None:
        super().__init__()
        if xi <= 0:
            raise ValueError(f"SI damping xi must be > 0, got {xi}")
        self.si_lambda = float(si_lambda)
        self.xi = float(xi)
        self.importance_min = importance_min
        self.importance_max = importance_max
        self.omega: dict[str, Tensor] = {}  # importance, summed over finished tasks
        self.theta_star: dict[str, Tensor] = {}  # parameters at the end of the last task
        self.path: dict[str, Tensor] = {}  # w of the current task
        self.task_start: dict[str, Tensor] = {}
        self._grad: dict[str, Tensor] = {}
        self._before_step: dict[str, Tensor] = {}
        self.last_penalty = 0.0  # the penalty added to the last minibatch's loss (a float)

    @property
    def active(self) -> bool:
        return bool(self.omega) and self.si_lambda != 0

    # ---- penalty --------------------------------------------------------------------------
    def penalty(self, model: nn.Module) -> Tensor:
        """``c * sum_k Omega_k (theta_k - theta*_k)^2`` (0 before the first task has ended)."""
        params = student_parameters(model)
        device = next(iter(params.values())).device
        total = torch.zeros((), device=device)
        if not self.active:
            return total
        for name, p in params.items():
            total = total + (self.omega[name] * (p - self.theta_star[name]) ** 2).sum()
        return self.si_lambda * total

    def before_backward(self, strategy, **kwargs) -> None:
        if not self.active:
            self.last_penalty = 0.0
            return
        penalty = self.penalty(strategy.model)
        self.last_penalty = float(penalty.detach())
        strategy.loss = strategy.loss + penalty

    # ---- path integral ----------------------------------------------------------------------
    def before_training_exp(self, strategy, **kwargs) -> None:
        params = student_parameters(strategy.model)
        self.task_start = {n: p.detach().clone() for n, p in params.items()}
        self.path = {n: torch.zeros_like(p, memory_format=torch.preserve_format)
                     for n, p in params.items()}

    @torch.no_grad()
    def before_update(self, strategy, **kwargs) -> None:
        """After backward, before the optimizer step: the task-loss gradient and theta now."""
        self._grad, self._before_step = {}, {}
        for name, p in student_parameters(strategy.model).items():
            if p.grad is None:
                continue
            grad = p.grad.detach().clone()
            if self.active:  # remove SI's own penalty gradient: g of the task loss only
                grad -= 2.0 * self.si_lambda * self.omega[name] * (p - self.theta_star[name])
            self._grad[name] = grad
            self._before_step[name] = p.detach().clone()

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        params = student_parameters(strategy.model)
        for name, grad in self._grad.items():
            delta = params[name] - self._before_step[name]
            self.path[name] -= grad * delta
        self._grad, self._before_step = {}, {}

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        for name, p in student_parameters(strategy.model).items():
            total_change = p - self.task_start[name]
            importance = self.path[name] / (total_change ** 2 + self.xi)
            omega = self.omega[name] + importance if name in self.omega else importance
            if self.importance_min is not None or self.importance_max is not None:
                omega = omega.clamp(min=self.importance_min, max=self.importance_max)
            self.omega[name] = omega
            self.theta_star[name] = p.detach().clone()
        self.path, self.task_start = {}, {}

    # ---- resumable state --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What carries over tasks: ``omega`` and ``theta_star`` (CPU copies)."""
        return {"omega": {n: t.detach().cpu().clone() for n, t in self.omega.items()},
                "theta_star": {n: t.detach().cpu().clone() for n, t in self.theta_star.items()}}

    def load_state_dict(self, state: dict[str, Any], strategy) -> None:
        device = torch.device(strategy.device)
        self.omega = {n: t.to(device) for n, t in state["omega"].items()}
        self.theta_star = {n: t.to(device) for n, t in state["theta_star"].items()}
