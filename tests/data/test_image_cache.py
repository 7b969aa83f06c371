"""ImageCache: least-recently-used eviction within its bounds, threads, pickling."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from cl_bench.data import cache as cache_module
from cl_bench.data.cache import ImageCache, default_cache
from cl_bench.errors import ConfigError


def _array(kib: int) -> np.ndarray:
    return np.zeros(kib * 1024, dtype=np.uint8)


def test_bounded_by_items_evicts_the_least_recently_used():
    cache = ImageCache(max_mb=None, max_items=2)
    cache.get_or_load("a", lambda: _array(1))
    cache.get_or_load("b", lambda: _array(1))
    cache.get_or_load("a", lambda: pytest.fail("a is cached"))
    cache.get_or_load("c", lambda: _array(1))
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2 and cache.hits == 1 and cache.misses == 3


def test_bounded_by_megabytes():
    cache = ImageCache(max_mb=1.0)
    for key in range(5):
        cache.get_or_load(key, lambda: _array(300))
    assert len(cache) == 3 and cache.nbytes == 3 * 300 * 1024
    assert 0 not in cache and 4 in cache


def test_zero_disables_and_oversized_values_are_not_kept():
    off = ImageCache(max_mb=0)
    value = off.get_or_load("a", lambda: _array(1))
    assert value.nbytes == 1024 and len(off) == 0
    small = ImageCache(max_mb=0.5)
    small.get_or_load("big", lambda: _array(600))
    assert len(small) == 0


def test_threads_share_one_cache():
    cache = ImageCache()
    results = []

    def worker():
        results.extend(
            cache.get_or_load(k % 10, lambda k=k: _array(1) + k % 10)[0] for k in range(200)
        )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 10 and len(results) == 800
    assert cache.hits + cache.misses == 800


def test_pickled_cache_arrives_empty_with_the_same_limits():
    cache = ImageCache(max_mb=3, max_items=7)
    cache.get_or_load("a", lambda: _array(1))
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.max_mb == 3 and copy.max_items == 7
    assert pickle.loads(pickle.dumps(default_cache())) is default_cache()


def test_default_cache_size_from_the_environment(monkeypatch):
    monkeypatch.setattr(cache_module, "_DEFAULT_CACHE", [None])
    monkeypatch.setenv(cache_module.CACHE_MB_ENV, "12.5")
    assert default_cache().max_mb == 12.5
    monkeypatch.setattr(cache_module, "_DEFAULT_CACHE", [None])
    monkeypatch.setenv(cache_module.CACHE_MB_ENV, "lots")
    with pytest.raises(ConfigError, match="CL_BENCH_IMAGE_CACHE_MB='lots'"):
        default_cache()


def test_bad_limits():
    with pytest.raises(ConfigError):
        ImageCache(max_items=-1)
    with pytest.raises(ConfigError):
        ImageCache(max_items=1.5)
