"""Tiny MVTec-layout datasets built in tmp_path for the data tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_helpers import make_category


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """A root with two categories, ``widget`` and ``gadget``."""
    root = tmp_path / "set"
    make_category(root, "widget", seed=1)
    make_category(root, "gadget", defects={"dent": 1, "hole": 2}, seed=2)
    return root


@pytest.fixture
def category_factory(tmp_path: Path) -> Callable[..., Path]:
    """``factory(**options) -> root`` writing one category into a fresh root."""
    counter = iter(range(1000))

    def factory(**options) -> Path:
        root = tmp_path / f"root{next(counter)}"
        make_category(root, **options)
        return root

    return factory
