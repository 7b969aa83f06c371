"""Task orders: named, random with a seed, explicit; the sweep's ``random<k>`` names."""

from __future__ import annotations

import pytest

from cl_bench.data.orders import (
    check_order,
    order_label,
    order_name,
    resolve_order,
    same_order,
    split_random_seed,
)
from cl_bench.errors import ConfigError
from cl_bench.sweep.grid import apply_order_name, requested_order_name

NAMES = ["carpet", "zip", "bottle"]


def test_named_orders_resolve() -> None:
    assert resolve_order(NAMES, "alphabetical") == ["bottle", "carpet", "zip"]
    assert resolve_order(NAMES, "reversed") == ["zip", "carpet", "bottle"]
    assert resolve_order(NAMES, ["zip", "bottle", "carpet"]) == ["zip", "bottle", "carpet"]
    shuffled = resolve_order(NAMES, "random", 5)
    assert sorted(shuffled) == sorted(NAMES) and shuffled == resolve_order(NAMES, "random", 5)


def test_order_names_and_labels() -> None:
    assert order_name("alphabetical") == "alphabetical"
    assert order_name("random", 4) == "random4"
    assert order_name(["b", "a"]) == "custom"
    assert order_name("reversed") == "reversed"
    assert order_label(["b", "a"]) == "custom:b>a"
    assert order_label("reversed") == "reversed"
    assert order_label(["b", "a"], 0, "reversed") == "reversed"


def test_random_k_and_apply() -> None:
    assert split_random_seed("random7", 1) == ("random", 7)
    assert split_random_seed(("b", "a"), 1) == (["b", "a"], 1)
    raw = {"data": {"order_seed": 9}}
    assert apply_order_name(raw, "random2")["data"] == {"order": "random", "order_seed": 2}
    assert apply_order_name(raw, "random")["data"] == {"order": "random", "order_seed": 9}
    assert apply_order_name({}, "reversed")["data"] == {"order": "reversed"}
    assert raw == {"data": {"order_seed": 9}}  # not modified in place
    assert requested_order_name(apply_order_name({}, "random3")) == "random3"


def test_same_order_accepts_the_written_out_list() -> None:
    """Sweep folders made before ``reversed`` reached the data layer stored the explicit list."""
    assert same_order(["zip", "carpet", "bottle"], "reversed")
    assert not same_order(["carpet", "zip", "bottle"], "reversed")
    assert not same_order("alphabetical", "reversed")
    assert same_order(["a", "b"], ("a", "b"))


@pytest.mark.parametrize("bad", ["random-1", "Reversed", "", [], [1, 2], 3])
def test_bad_orders(bad) -> None:
    with pytest.raises(ConfigError, match="order"):
        check_order(bad, "data.order")
