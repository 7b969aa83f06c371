"""Options and registration of the ``routing`` strategy (config section ``strategy.routing``)."""

from __future__ import annotations

from typing import Literal

from strategies.continual.spec import StrategyOptions, StrategySpec


class RoutingOptions(StrategyOptions):
    """``router``: the task key and distance (docs/strategies.md, "Routing"; the default was
    chosen by measurement); ``init``: ``warm`` (each expert starts from the previous one) or
    ``fresh`` (from the untrained students, as the ``independent`` oracle); ``expert_dtype``:
    how experts are stored (``float16`` halves the memory; they score in the detector's dtype);
    ``gradient_free_memory``: for a detector that learns without gradients (PatchCore),
    ``own_task`` (default: expert t holds task t's memory only, whatever ``init`` says) or
    ``cumulative`` (with ``init: warm``, expert t holds the memory of tasks 0..t).
    """

    router: Literal["prototype_cosine", "prototype_euclidean", "mahalanobis"] = \
        "prototype_cosine"
    init: Literal["warm", "fresh"] = "warm"
    expert_dtype: Literal["float32", "float16"] = "float32"
    gradient_free_memory: Literal["own_task", "cumulative"] = "own_task"


def make_routing_plugins(options: RoutingOptions, seed: int) -> list:
    from strategies.continual.routing.plugin import RoutingPlugin

    return [RoutingPlugin(options.router, options.init, options.expert_dtype,
                          gradient_free_memory=options.gradient_free_memory)]


SPEC = StrategySpec(
    name="routing",
    description="one expert per task, each test image scored by the expert of its nearest "
                "task key (no task label)",
    options=RoutingOptions,
    make_plugins=make_routing_plugins,
)
