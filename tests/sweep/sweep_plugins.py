"""Test strategies for the Ray cluster tests, imported by a cell through ``plugins:``
(``tests/sweep`` is put on ``PYTHONPATH`` of every node).

- ``gated``: naive fine-tuning that, the first time any cell of the test starts its second task,
  stops at a gate (a folder) until the test has done its deed (killed the node or the driver)
  and writes ``release``. Later arrivals pass, so a retried or resumed cell runs through. The
  gate is a file handshake, not a timer: the test waits for ``arrived``, then acts.
- ``diverging``: naive fine-tuning whose loss becomes NaN, as a diverged training does; the run
  fails for its own reasons.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from avalanche.training.plugins import SupervisedPlugin

from strategies.continual.registry import StrategyOptions, StrategySpec, register_strategy

ARRIVED, RELEASE = "arrived", "release"
#: a safety net only: a gate never released fails its cell instead of hanging the test suite
GATE_LIMIT_S = 300


class GatedOptions(StrategyOptions):
    gate: str = ""


def wait_at_gate(gate: Path) -> None:
    """The first caller writes ``arrived`` (its Ray node id and pid) and waits for ``release``."""
    if (gate / RELEASE).exists():
        return
    try:
        fd = os.open(gate / ARRIVED, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # an earlier attempt stopped here: this one runs through
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    with os.fdopen(fd, "w") as fh:
        json.dump({"node_id": node, "pid": os.getpid()}, fh)
    deadline = time.monotonic() + GATE_LIMIT_S
    while not (gate / RELEASE).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} was never released")
        time.sleep(0.05)


class GatePlugin(SupervisedPlugin):
    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = Path(gate)

    def before_training_exp(self, strategy, **kwargs) -> None:
        if strategy.experience.current_experience >= 1:
            wait_at_gate(self.gate)


class DivergePlugin(SupervisedPlugin):
    def before_backward(self, strategy, **kwargs) -> None:
        strategy.loss = strategy.loss * float("nan")


def _gate(options) -> str:
    return options["gate"] if isinstance(options, dict) else options.gate


register_strategy(StrategySpec(
    name="gated", description="naive, stopping once at a gate before task 2 (tests)",
    options=GatedOptions, make_plugins=lambda options, seed: [GatePlugin(_gate(options))],
    source="tests.sweep.sweep_plugins"))
register_strategy(StrategySpec(
    name="diverging", description="naive with a NaN loss (tests)",
    make_plugins=lambda options, seed: [DivergePlugin()],
    source="tests.sweep.sweep_plugins"))
