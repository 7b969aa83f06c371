"""Fixtures of the strategies tests: a registry that a test may add strategies to."""

from __future__ import annotations

import pytest

from strategies.continual import registry


@pytest.fixture
def scratch_registry():
    """Register test strategies freely: the registry is restored when the test ends (and its
    version moves on, so that the configuration schema is rebuilt)."""
    saved = dict(registry._specs)
    yield registry
    registry._specs.clear()
    registry._specs.update(saved)
    registry._version += 1
