"""Options of the ``routing`` strategy (config section ``strategy.routing``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RoutingOptions(BaseModel):
    """``router``: the task key and distance (docs/strategies.md, "Routing"; the default was
    chosen by measurement); ``init``: ``warm`` (each expert starts from the previous one) or
    ``fresh`` (from the untrained students, as the ``independent`` oracle); ``expert_dtype``:
    how experts are stored (``float16`` halves the memory; they score in the detector's dtype).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    router: Literal["prototype_cosine", "prototype_euclidean", "mahalanobis"] = \
        "prototype_cosine"
    init: Literal["warm", "fresh"] = "warm"
    expert_dtype: Literal["float32", "float16"] = "float32"
