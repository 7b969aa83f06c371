"""Continual-learning plugins for distillation detectors, and their resumable state.

Avalanche supplies replay (``ReplayPlugin`` with an ``ExperienceBalancedBuffer``), EWC and SI; they
work here because the teacher is hidden from ``parameters()``. Two things Avalanche lacks:

* :class:`StudentDistillationPlugin` — LwF-style regularisation for feature students. Avalanche's
  ``LwFPlugin`` distils softmax logits and reads class targets, which these detectors do not have.
  Here the current students are pulled toward a frozen copy of the previous task's students on
  the current images:
  ``L_fd = alpha * sum_branches sum_levels mean((S_l(x) - S_l^{prev}(x))^2)``.
* :func:`plugin_state` / :func:`load_plugin_state` — the tensors that EWC, SI and the student
  distillation keep between tasks, as a ``weights_only``-loadable dict, so that an interrupted
  run resumes with the same regulariser state.

:class:`SeededReplayPlugin` draws its buffer with a generator seeded per task, so that a resumed
run can rebuild the same buffer without storing images.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from avalanche.training.plugins import (
    EWCPlugin,
    ReplayPlugin,
    SupervisedPlugin,
    SynapticIntelligencePlugin,
)
from avalanche.training.storage_policy import ExperienceBalancedBuffer
from avalanche.training.utils import ParamData
from torch import Tensor


class StudentDistillationPlugin(SupervisedPlugin):
    """Feature distillation toward the previous task's students (LwF for feature students)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.previous: torch.nn.Module | None = None

    def before_backward(self, strategy, **kwargs) -> None:
        if self.previous is None or self.alpha == 0:
            return
        current = strategy.mb_output
        with torch.no_grad():
            previous = self.previous(strategy.mb_x)
        penalty = strategy.mb_x.new_zeros(())
        for branch, levels in current.students.items():
            for now, before in zip(levels, previous.students[branch], strict=True):
                penalty = penalty + torch.mean((now - before) ** 2)
        strategy.loss += self.alpha * penalty

    def after_training_exp(self, strategy, **kwargs) -> None:
        # deepcopy shares the frozen teacher (AnomalyDetector.__deepcopy__): only students copy
        self.previous = copy.deepcopy(strategy.model).eval()
        for p in self.previous.parameters():
            p.requires_grad_(False)


def replay_seed(seed: int, step: int) -> int:
    """The seed of the replay buffer's draw after training task ``step``."""
    return (seed * 1_000_003 + step * 7919 + 17) % (2**31 - 1)


class SeededReplayPlugin(ReplayPlugin):
    """Avalanche replay with an experience-balanced buffer drawn from a per-task seed."""

    def __init__(self, mem_size: int, seed: int, batch_size_mem: int | None = None) -> None:
        super().__init__(
            mem_size=mem_size,
            batch_size_mem=batch_size_mem,
            storage_policy=ExperienceBalancedBuffer(max_size=mem_size, adaptive_size=True),
        )
        self.seed = seed

    def add_experience(self, experience, step: int) -> None:
        """Add one experience's training images to the buffer (also used when resuming)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(replay_seed(self.seed, step))
            self.storage_policy.post_adapt(None, experience)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.add_experience(strategy.experience, strategy.clock.train_exp_counter)

    def buffer_size(self) -> int:
        return len(self.storage_policy.buffer)


# ---- resumable state ------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, ParamData):
        return {"__param__": value.name, "data": value.data.detach().cpu().clone()}
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {"__dict__": [(_encode(k), _encode(v)) for k, v in value.items()]}
    if isinstance(value, tuple | list):
        return {"__seq__": [_encode(v) for v in value], "tuple": isinstance(value, tuple)}
    return value


def _decode(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        if "__param__" in value:
            data = value["data"].to(device)
            return ParamData(value["__param__"], shape=data.shape, init_tensor=data, device=device)
        if "__dict__" in value:
            return {_decode(k, device): _decode(v, device) for k, v in value["__dict__"]}
        if "__seq__" in value:
            items = [_decode(v, device) for v in value["__seq__"]]
            return tuple(items) if value["tuple"] else items
    return value


def plugin_state(plugin: SupervisedPlugin) -> dict[str, Any]:
    """What a plugin carries from one task to the next, as plain tensors and containers."""
    if isinstance(plugin, EWCPlugin):
        return {"saved_params": _encode(dict(plugin.saved_params)),
                "importances": _encode(dict(plugin.importances))}
    if isinstance(plugin, SynapticIntelligencePlugin):
        return {"ewc_data": _encode(plugin.ewc_data), "syn_data": _encode(plugin.syn_data)}
    if isinstance(plugin, StudentDistillationPlugin):
        prev = plugin.previous
        return {"previous": None if prev is None else _encode(prev.state_dict())}
    return {}


def load_plugin_state(plugin: SupervisedPlugin, state: dict[str, Any], strategy) -> None:
    """Restore :func:`plugin_state` into a fresh plugin of the same kind."""
    device = torch.device(strategy.device)
    if isinstance(plugin, EWCPlugin):
        from collections import defaultdict

        plugin.saved_params = defaultdict(dict, _decode(state["saved_params"], device))
        plugin.importances = defaultdict(dict, _decode(state["importances"], device))
    elif isinstance(plugin, SynapticIntelligencePlugin):
        plugin.ewc_data = _decode(state["ewc_data"], device)
        plugin.syn_data = _decode(state["syn_data"], device)
    elif isinstance(plugin, StudentDistillationPlugin) and state.get("previous") is not None:
        previous = copy.deepcopy(strategy.model)
        previous.load_state_dict(_decode(state["previous"], device))
        previous.eval()
        for p in previous.parameters():
            p.requires_grad_(False)
        plugin.previous = previous


def make_plugins(name: str, options: dict[str, Any], seed: int) -> list[SupervisedPlugin]:
    """The plugins of a continual strategy by name (``naive``, ``joint`` and ``independent``
    need none: they differ in the stream or in how many detectors are trained)."""
    if name in ("naive", "joint", "independent"):
        return []
    if name == "replay":
        return [SeededReplayPlugin(options["buffer_size"], seed, options.get("batch_size_mem"))]
    if name == "ewc":
        return [EWCPlugin(options["ewc_lambda"], mode="online",
                          decay_factor=options["decay_factor"])]
    if name == "si":
        return [SynapticIntelligencePlugin(options["si_lambda"], eps=options["eps"])]
    if name == "feature_distillation":
        return [StudentDistillationPlugin(options["alpha"])]
    raise ValueError(f"unknown continual strategy {name!r}")
