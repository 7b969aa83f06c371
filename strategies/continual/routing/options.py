"""Options and registration of the ``routing`` strategy (config section ``strategy.routing``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from strategies.continual.calibration_options import CalibrationOptions
from strategies.continual.spec import StrategySpec


class RoutingOptions(CalibrationOptions):
    """``router``: the task key and distance (docs/strategies.md, "Routing"; the default was
    chosen by measurement); ``init``: ``warm`` (each expert starts from the previous one) or
    ``fresh`` (from the untrained students, as the ``independent`` oracle); ``expert_dtype``:
    how experts are stored (``float16`` halves the memory; they score in the detector's dtype);
    ``gradient_free_memory``: for a detector that learns without gradients (PatchCore),
    ``own_task`` (default: expert t holds task t's memory only, whatever ``init`` says) or
    ``cumulative`` (with ``init: warm``, expert t holds the memory of tasks 0..t);
    ``calibration``, ``calibration_holdout`` and ``calibration_folds``: each expert's maps put
    on one scale before pooling, from held-out (or cross-fitted) normal training images
    (:mod:`strategies.continual.calibration`);
    ``top_k``: the experts of the k nearest tasks score each test image and the lowest image
    score wins, with its expert's map (1, the default: the nearest task's expert only; the rule
    for an unsure router, :mod:`strategies.continual.routing.plugin`).
    """

    router: Literal["prototype_cosine", "prototype_euclidean", "mahalanobis"] = \
        "prototype_cosine"
    init: Literal["warm", "fresh"] = "warm"
    expert_dtype: Literal["float32", "float16"] = "float32"
    gradient_free_memory: Literal["own_task", "cumulative"] = "own_task"
    top_k: int = Field(1, ge=1)


def make_routing_plugins(options: RoutingOptions, seed: int) -> list:
    from strategies.continual.calibration import make_calibration
    from strategies.continual.routing.plugin import RoutingPlugin

    return [RoutingPlugin(options.router, options.init, options.expert_dtype,
                          gradient_free_memory=options.gradient_free_memory,
                          calibration=make_calibration(options, seed),
                          top_k=options.top_k)]


SPEC = StrategySpec(
    name="routing",
    description="one expert per task, each test image scored by the expert of its nearest "
                "task key (no task label)",
    options=RoutingOptions,
    make_plugins=make_routing_plugins,
)
