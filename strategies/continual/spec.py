"""What a continual strategy is, declared once: :class:`StrategySpec`
(:mod:`strategies.continual.registry`).

A strategy is its plugins (Avalanche ``SupervisedPlugin`` objects built from its options and the
run's seed), its options model (validated as the config section ``strategy.<name>``), the kind
of training stream it needs and whether it uses the task identity at test time. The runner,
config validation, records and reports read these fields; none of them tests a strategy's name.

Stream kinds (``spec.stream``), for T tasks in the run's order:

- ``sequential``: step i trains on task i (naive fine-tuning and every regulariser);
- ``joint``: one step trains on all T tasks at once; it is recorded as step T-1;
- ``cumulative``: step i trains on the union of tasks 0..i;
- ``per_task``: step i trains a fresh detector on task i alone and task j is tested with
  detector j (the task-aware oracle).

A plugin keeps what it carries from one task to the next through two optional methods,
``state_dict() -> dict`` (tensors and plain containers only, loadable with
``torch.load(weights_only=True)``) and ``load_state_dict(state, strategy)``; a plugin whose state
is rebuilt from the training data of the steps done instead defines
``restore_from_stream(experiences)`` (replay re-draws its buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

StreamKind = Literal["sequential", "joint", "cumulative", "per_task"]
STREAM_KINDS: tuple[str, ...] = ("sequential", "joint", "cumulative", "per_task")
#: names the configuration's ``strategy`` section uses itself (``strategy.name``, its methods)
RESERVED_NAMES = ("name", "spec", "options")


class StrategyOptions(BaseModel):
    """Base of a strategy's options model: an unknown key is an error, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def no_plugins(options: Any, seed: int) -> list:
    """The plugins of a strategy that differs from naive fine-tuning only in its stream."""
    return []


@dataclass(frozen=True)
class StrategySpec:
    """One continual strategy, declared once (see the module docstring).

    ``make_plugins(options, seed)`` receives the validated ``options`` model instance (``None``
    when the strategy has no options) and the run's seed, and returns fresh plugins.
    ``source`` says where the declaration came from: ``"cl-bench"`` for the built-in ones, an
    entry point ``"pkg.module:obj"`` or a module name.
    """

    name: str
    description: str
    stream: StreamKind = "sequential"
    task_aware: bool = False
    options: type[BaseModel] | None = None
    make_plugins: Callable[[Any, int], list] = field(default=no_plugins)
    source: str = "cl-bench"

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"strategy name {self.name!r}: use a lower-case Python identifier "
                             "(it is a config value and the config section strategy.<name>)")
        if self.stream not in STREAM_KINDS:
            raise ValueError(f"strategy {self.name!r}: unknown stream kind {self.stream!r}; "
                             f"allowed: {', '.join(STREAM_KINDS)}")
        if self.options is not None and not (isinstance(self.options, type)
                                             and issubclass(self.options, BaseModel)):
            raise TypeError(f"strategy {self.name!r}: options must be a pydantic model class, "
                            f"got {self.options!r}")
        if self.name in RESERVED_NAMES:
            raise ValueError(f"{self.name!r} cannot be a strategy name: strategy.{self.name} is "
                             "taken by the configuration's strategy section itself")

    def build_plugins(self, options: Any, seed: int) -> list:
        """``make_plugins(options, seed)`` as a fresh list."""
        return list(self.make_plugins(options, seed))
