"""Named task orders, a sweep axis: ``alphabetical``, ``reversed``, ``random<k>``, or a list.

The configuration field ``data.order`` accepts ``"alphabetical"``, ``"random"`` (permutation
seeded by ``data.order_seed``) or an explicit list of categories; the data layer
(:func:`cl_bench.data.resolve_order`) implements those. A sweep also accepts names:

- ``alphabetical``: the sorted categories (the literature's default);
- ``reversed``: the sorted categories backwards (the hardest contrast to alphabetical);
- ``random<k>`` (``random0``, ``random1``, ...): ``data.order = "random"`` with
  ``data.order_seed = k``; ``random`` alone keeps the configured ``data.order_seed``;
- an explicit list of categories, named ``custom``.

``reversed`` needs the category names, which are only known once the data folder is found (a
synthetic set is generated on first use), so it is resolved where the cell runs, by
:func:`resolve_named_order`, into an explicit list.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from cl_bench.errors import ConfigError

ALPHABETICAL = "alphabetical"
REVERSED = "reversed"
RANDOM = "random"
CUSTOM = "custom"
_RANDOM_K = re.compile(r"^random(?P<seed>\d+)$")
NAMED_ORDERS_HELP = (
    "alphabetical, reversed, random, random<k> (e.g. random0) or a list of categories")


def order_name(order: Any, order_seed: int = 0) -> str:
    """The readable name of an order value (the ``order`` column of records.csv).

    >>> order_name("random", 3), order_name(["b", "a"]), order_name("reversed")
    ('random3', 'custom', 'reversed')
    """
    if isinstance(order, (list, tuple)):
        return CUSTOM
    if order == RANDOM:
        return f"random{order_seed}"
    return str(order)


def check_order(order: Any, where: str) -> None:
    """Raise :class:`ConfigError` unless ``order`` is a known name or a list of names."""
    if isinstance(order, (list, tuple)):
        if not order or not all(isinstance(c, str) for c in order):
            raise ConfigError(f"{where}: an explicit order is a non-empty list of category "
                              f"names, got {order!r}")
        return
    if order in (ALPHABETICAL, REVERSED, RANDOM) or (
            isinstance(order, str) and _RANDOM_K.match(order)):
        return
    raise ConfigError(f"{where}: unknown task order {order!r}; use {NAMED_ORDERS_HELP}")


def apply_order_name(raw: dict, order: Any) -> dict:
    """``raw`` with ``data.order``/``data.order_seed`` set from a named order (a copy).

    ``random<k>`` becomes ``order: random, order_seed: k``; ``reversed`` is kept as it is and
    resolved by :func:`resolve_named_order` once the categories are known.
    """
    check_order(order, "data.order")
    raw = copy.deepcopy(raw)
    data = raw.setdefault("data", {})
    match = _RANDOM_K.match(order) if isinstance(order, str) else None
    if match:
        data["order"] = RANDOM
        data["order_seed"] = int(match["seed"])
    else:
        data["order"] = list(order) if isinstance(order, (list, tuple)) else order
    return raw


def requested_order_name(raw: dict) -> str:
    """The name of the order a raw cell configuration asks for (before resolution)."""
    data = raw.get("data") or {}
    order = data.get("order", ALPHABETICAL)
    return order_name(order, int(data.get("order_seed", 0) or 0))


def reversed_order(categories: Sequence[str]) -> list[str]:
    """The sorted categories, backwards."""
    return sorted(categories, reverse=True)


def resolve_named_order(raw: dict, categories: Sequence[str]) -> dict:
    """Replace ``data.order: reversed`` by the explicit reversed list of ``categories``.

    ``categories``: the categories the run uses (``data.categories``, else all found in the data
    folder). Other orders are returned unchanged (a copy).
    """
    raw = copy.deepcopy(raw)
    data = raw.setdefault("data", {})
    if data.get("order") == REVERSED:
        data["order"] = reversed_order(categories)
    return raw
