"""The continual-learning strategies' plugins by name, and their resumable state.

* replay: :class:`~strategies.replay.SeededReplayPlugin` (Avalanche's ``ReplayPlugin`` with an
  experience-balanced buffer drawn from a per-task seed; equal-compute batches by default);
* ewc: Avalanche's ``EWCPlugin`` (online mode); it works here because the teacher is hidden from
  ``parameters()`` and the criterion keeps Avalanche's ``criterion(output, y)`` contract;
* si: :class:`~strategies.si.SIPlugin` (our own; Avalanche's measures no weight change on the
  CPU and clips the importances, see :mod:`strategies.si`);
* feature_distillation: :class:`~strategies.feature_distillation.StudentDistillationPlugin`.

:func:`plugin_state` / :func:`load_plugin_state`: the tensors that EWC, SI and the student
distillation keep between tasks, as a ``weights_only``-loadable dict, so that an interrupted run
resumes with the same regulariser state. docs/strategies.md describes every strategy.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from avalanche.training.plugins import EWCPlugin, SupervisedPlugin
from avalanche.training.utils import ParamData
from torch import Tensor

from strategies.feature_distillation import StudentDistillationPlugin, prepare_previous
from strategies.replay import SeededReplayPlugin, replay_seed
from strategies.si import SIPlugin

__all__ = ["SIPlugin", "SeededReplayPlugin", "StudentDistillationPlugin", "load_plugin_state",
           "make_plugins", "plugin_state", "replay_seed"]


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
    if isinstance(plugin, SIPlugin):
        return plugin.state()
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
    elif isinstance(plugin, SIPlugin):
        plugin.load_state(state, device)
    elif isinstance(plugin, StudentDistillationPlugin) and state.get("previous") is not None:
        previous = copy.deepcopy(strategy.model)
        previous.load_state_dict(_decode(state["previous"], device))
        prepare_previous(previous)
        plugin.previous = previous


def make_plugins(name: str, options: dict[str, Any], seed: int) -> list[SupervisedPlugin]:
    """The plugins of a continual strategy by name (``naive``, ``joint`` and ``independent``
    need none: they differ in the stream or in how many detectors are trained)."""
    if name in ("naive", "joint", "independent"):
        return []
    if name == "replay":
        return [SeededReplayPlugin(options["buffer_size"], seed, mode=options["mode"],
                                   memory_fraction=options["memory_fraction"],
                                   batch_size_mem=options.get("batch_size_mem"))]
    if name == "ewc":
        return [EWCPlugin(options["ewc_lambda"], mode="online",
                          decay_factor=options["decay_factor"])]
    if name == "si":
        return [SIPlugin(options["si_lambda"], xi=options["xi"],
                         importance_min=options.get("importance_min"),
                         importance_max=options.get("importance_max"))]
    if name == "feature_distillation":
        return [StudentDistillationPlugin(options["alpha"])]
    raise ValueError(f"unknown continual strategy {name!r}")
