"""``l2_anchor``: a tiny continual strategy, declared as ``SPEC`` and registered through the entry
point group ``cl_bench.strategies`` of this package's ``pyproject.toml``.

After each task the students' weights ``theta*`` are kept; while training the next task the loss
gains ``alpha * sum_i (theta_i - theta*_i)^2`` (the "L2" baseline of the continual-learning
literature: EWC with unit importances). Its state is resumable through ``state_dict`` /
``load_state_dict``, as the strategy registry's plugin contract asks.
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin
from pydantic import Field

from strategies.continual.registry import StrategyOptions, StrategySpec


class L2AnchorOptions(StrategyOptions):
    alpha: float = Field(1.0, ge=0)


class L2AnchorPlugin(SupervisedPlugin):
    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.anchor: dict[str, torch.Tensor] = {}

    def before_backward(self, strategy, **kwargs) -> None:
        if not self.anchor or self.alpha == 0:
            return
        penalty = sum(((p - self.anchor[n]) ** 2).sum()
                      for n, p in strategy.model.named_parameters()
                      if p.requires_grad and n in self.anchor)
        strategy.loss = strategy.loss + self.alpha * penalty

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.anchor = {n: p.detach().clone() for n, p in strategy.model.named_parameters()
                       if p.requires_grad}

    def state_dict(self) -> dict:
        return {"anchor": {n: t.cpu() for n, t in self.anchor.items()}}

    def load_state_dict(self, state: dict, strategy) -> None:
        self.anchor = {n: t.to(strategy.device) for n, t in state["anchor"].items()}


# not registered here: the entry point names SPEC, and cl-bench registers it with the
# distribution as its source (registering it here too would register the name twice)
SPEC = StrategySpec(
    name="l2_anchor",
    description="L2 pull towards the previous task's weights (example plugin)",
    options=L2AnchorOptions,
    make_plugins=lambda options, seed: [L2AnchorPlugin(options.alpha)],
)
