"""The plugins of a continual strategy, and their resumable state, read from the registry.

Every strategy declares its plugins in its :class:`~strategies.continual.spec.StrategySpec`
(:mod:`strategies.continual.registry`); docs/strategies.md describes each one.

:func:`plugin_state` / :func:`load_plugin_state`: what a plugin carries from one task to the next
(its ``state_dict()``; ``{}`` for a plugin without one), as a ``weights_only``-loadable dict, so
that an interrupted run resumes with the same regulariser state. :func:`restore_from_stream`
lets a plugin that rebuilds its state from the data (replay) do so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from avalanche.training.plugins import SupervisedPlugin

from strategies.continual.ewc import ResumableEWCPlugin
from strategies.continual.feature_distillation import StudentDistillationPlugin
from strategies.continual.registry import get_strategy
from strategies.continual.replay import SeededReplayPlugin, replay_seed
from strategies.continual.si import SIPlugin

__all__ = ["ResumableEWCPlugin", "SIPlugin", "SeededReplayPlugin", "StudentDistillationPlugin",
           "load_plugin_state", "make_plugins", "plugin_state", "replay_seed",
           "restore_from_stream"]


def plugin_state(plugin: SupervisedPlugin) -> dict[str, Any]:
    """What a plugin carries from one task to the next, as plain tensors and containers."""
    state_dict = getattr(plugin, "state_dict", None)
    return state_dict() if callable(state_dict) else {}


def load_plugin_state(plugin: SupervisedPlugin, state: dict[str, Any], strategy) -> None:
    """Restore :func:`plugin_state` into a fresh plugin of the same kind."""
    load = getattr(plugin, "load_state_dict", None)
    if callable(load):
        load(state, strategy)
    elif state:
        raise ValueError(f"{type(plugin).__name__} has no load_state_dict, but the checkpoint "
                         f"holds state for it ({', '.join(map(str, state))})")


def restore_from_stream(plugin: SupervisedPlugin, experiences: Sequence) -> None:
    """On resume: let ``plugin`` rebuild what it draws from the training data of the steps done
    (``experiences``: the train experiences of steps 0..last, in order)."""
    restore = getattr(plugin, "restore_from_stream", None)
    if callable(restore):
        restore(experiences)


def make_plugins(name: str, options: Any, seed: int) -> list[SupervisedPlugin]:
    """The plugins of the registered strategy ``name`` (``options``: its validated options
    model instance, or ``None``)."""
    return get_strategy(name).build_plugins(options, seed)
