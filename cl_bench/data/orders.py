"""Task orders, in one place: what ``data.order`` and a sweep's ``data.order`` axis accept.

- ``alphabetical``: the sorted categories (the literature's default; with several named
  sources :func:`cl_bench.data.build_benchmark` keeps the sources in the order given);
- ``reversed``: the sorted categories backwards (the hardest contrast to alphabetical);
- ``random``: the permutation ``numpy.random.default_rng(seed).permutation`` of the sorted
  categories, ``seed`` being ``data.order_seed``; a sweep also accepts ``random<k>`` (e.g.
  ``random0``), which means ``random`` with ``data.order_seed = k``;
- an explicit list of categories (each exactly once), named ``custom``.

The names are resolved into a list by :func:`resolve_order` where the categories are known (the
data layer, when the benchmark is built); everything else handles the names only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from cl_bench.errors import ConfigError

ALPHABETICAL = "alphabetical"
REVERSED = "reversed"
RANDOM = "random"
CUSTOM = "custom"
#: the named orders ``data.order`` accepts (besides an explicit list)
ORDERS = (ALPHABETICAL, REVERSED, RANDOM)
_RANDOM_K = re.compile(r"^random(?P<seed>\d+)$")
NAMED_ORDERS_HELP = (
    "alphabetical, reversed, random, random<k> (e.g. random0) or a list of categories")

Order = str | Sequence[str]


def resolve_order(categories: Sequence[str], order: Order = ALPHABETICAL,
                  seed: int = 0) -> list[str]:
    """The task order of ``categories`` for the order ``order`` (see the module docstring).

    ``"random<k>"`` is not accepted here: :func:`split_random_seed` turns it into ``"random"``
    and ``k`` first.
    """
    names = list(categories)
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise ConfigError(f"categories listed twice: {', '.join(duplicates)}; list each once")
    if isinstance(order, str):
        if order == ALPHABETICAL:
            return sorted(names)
        if order == REVERSED:
            return sorted(names, reverse=True)
        if order == RANDOM:
            ordered = sorted(names)
            return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
        raise ConfigError(
            f"order={order!r}: choose 'alphabetical', 'reversed', 'random' or give an explicit "
            f"list of categories"
        )
    explicit = list(order)
    repeated = sorted({c for c in explicit if explicit.count(c) > 1})
    if repeated:
        raise ConfigError(f"order lists {', '.join(repeated)} more than once; list each once")
    missing = [c for c in names if c not in explicit]
    extra = [c for c in explicit if c not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"it lacks {', '.join(missing)}")
        if extra:
            parts.append(f"it names {', '.join(extra)}, which are not among the categories")
        raise ConfigError(
            f"order {explicit} is not a permutation of the categories {names}: {'; '.join(parts)}"
        )
    return explicit


def check_order(order: Any, where: str) -> None:
    """Raise :class:`ConfigError` unless ``order`` is a named order, ``random<k>`` or a list."""
    if isinstance(order, (list, tuple)):
        if not order or not all(isinstance(c, str) for c in order):
            raise ConfigError(f"{where}: an explicit order is a non-empty list of category "
                              f"names, got {order!r}")
        return
    if order in ORDERS or (isinstance(order, str) and _RANDOM_K.match(order)):
        return
    raise ConfigError(f"{where}: unknown task order {order!r}; use {NAMED_ORDERS_HELP}")


def split_random_seed(order: Any, order_seed: int | None) -> tuple[Any, int | None]:
    """``(order, order_seed)`` with ``random<k>`` turned into ``("random", k)``.

    >>> split_random_seed("random2", 9), split_random_seed("random", 9)
    (('random', 2), ('random', 9))
    """
    match = _RANDOM_K.match(order) if isinstance(order, str) else None
    if match:
        return RANDOM, int(match["seed"])
    return (list(order) if isinstance(order, (list, tuple)) else order), order_seed


def order_name(order: Any, order_seed: int = 0) -> str:
    """The readable name of an order (a sweep's run ids and ``order`` column).

    >>> order_name("random", 3), order_name(["b", "a"]), order_name("reversed")
    ('random3', 'custom', 'reversed')
    """
    if isinstance(order, (list, tuple)):
        return CUSTOM
    if order == RANDOM:
        return f"{RANDOM}{order_seed}"
    return str(order)


def order_label(order: Any, order_seed: int = 0, name: str | None = None) -> str:
    """The ``order`` column of records.csv: ``name`` when given (sweeps give it), else the
    readable name, an explicit list spelt out as ``custom:<first>><second>...``.

    >>> order_label(["b", "a"]), order_label("random", 1), order_label(["b", "a"], name="mine")
    ('custom:b>a', 'random1', 'mine')
    """
    if name:
        return name
    if isinstance(order, (list, tuple)):
        return f"{CUSTOM}:" + ">".join(order)
    return order_name(order, order_seed)


def same_order(stored: Any, wanted: Any, order_seed: int = 0) -> bool:
    """Whether the ``data.order`` of a saved configuration gives the same tasks in the same
    order as ``wanted``: equal, or a list that the named order ``wanted`` resolves to (a run
    folder made when sweeps wrote ``reversed`` out as the explicit list)."""
    if stored == wanted or (isinstance(stored, (list, tuple)) and isinstance(wanted, (list, tuple))
                            and list(stored) == list(wanted)):
        return True
    if isinstance(stored, (list, tuple)) and wanted in ORDERS:
        try:
            return resolve_order(stored, wanted, order_seed) == list(stored)
        except ConfigError:
            return False
    return False
