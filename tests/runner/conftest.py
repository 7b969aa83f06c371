"""Tiny synthetic experiments for runner tests."""

from __future__ import annotations

import pytest
from runner_helpers import tiny_raw

from cl_bench.config import validate


@pytest.fixture
def synthetic_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "cl-bench-cache"
    monkeypatch.setenv("CL_BENCH_CACHE", str(cache))
    return cache


@pytest.fixture
def tiny_config(synthetic_cache):
    return lambda **overrides: validate(tiny_raw(**overrides))
