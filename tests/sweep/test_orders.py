"""Named task orders."""

from __future__ import annotations

import pytest

from cl_bench.errors import ConfigError
from cl_bench.sweep.orders import (
    apply_order_name,
    check_order,
    order_name,
    resolve_named_order,
    reversed_order,
)


def test_order_names() -> None:
    assert order_name("alphabetical") == "alphabetical"
    assert order_name("random", 4) == "random4"
    assert order_name(["b", "a"]) == "custom"
    assert order_name("reversed") == "reversed"


def test_apply_and_resolve() -> None:
    raw = {"data": {"order_seed": 9}}
    assert apply_order_name(raw, "random2")["data"] == {"order": "random", "order_seed": 2}
    assert apply_order_name(raw, "random")["data"] == {"order": "random", "order_seed": 9}
    assert raw == {"data": {"order_seed": 9}}  # not modified in place
    resolved = resolve_named_order(apply_order_name({}, "reversed"), ["carpet", "bottle", "zip"])
    assert resolved["data"]["order"] == ["zip", "carpet", "bottle"]
    assert reversed_order(["b", "c", "a"]) == ["c", "b", "a"]
    untouched = resolve_named_order({"data": {"order": "alphabetical"}}, ["a"])
    assert untouched["data"]["order"] == "alphabetical"


@pytest.mark.parametrize("bad", ["random-1", "Reversed", "", [], [1, 2], 3])
def test_bad_orders(bad) -> None:
    with pytest.raises(ConfigError, match="order"):
        check_order(bad, "data.order")
