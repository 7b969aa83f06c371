"""A bounded, process-local cache of decoded and resized images.

MVTec AD originals are PNGs of up to 1024x1024 pixels; decoding one costs far more than the
network step that consumes its 256x256 resized copy. Every file is therefore decoded and resized
once per process and its ``uint8`` result kept (not the normalised ``float32`` tensor, which is
four times larger). Least-recently-used entries are dropped when the cache exceeds ``max_mb``
megabytes or ``max_items`` entries. Written by hand because ``functools.lru_cache`` bounds only
the number of entries, not their memory.

The cache is safe for several threads (one lock around the bookkeeping) and for DataLoader
worker processes: a forked worker works on its own copy, and a pickled cache (spawned workers)
arrives empty with the same limits.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from cl_bench.errors import ConfigError

#: environment variable that sets the size of the process-wide cache, in megabytes
CACHE_MB_ENV = "CL_BENCH_IMAGE_CACHE_MB"
#: default size of the process-wide cache: 2 GB holds MVTec AD's 5354 images at 256 px ~ 10 times
DEFAULT_CACHE_MB = 2048.0


def _nbytes(value: Any) -> int:
    """Bytes held by a cached value: the numpy arrays it holds (a tuple's items are summed)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list):
        return sum(_nbytes(item) for item in value)
    return int(getattr(value, "nbytes", 0))


class ImageCache:
    """Least-recently-used cache of decoded images, bounded in megabytes and/or entries.

    ``max_mb=0`` or ``max_items=0`` disables caching (every lookup decodes); ``None`` leaves that
    bound off. A value larger than the whole budget is returned but not kept.
    """

    def __init__(self, max_mb: float | None = DEFAULT_CACHE_MB, max_items: int | None = None):
        if max_mb is not None and not max_mb >= 0:
            raise ConfigError(f"image cache size max_mb={max_mb!r} must be >= 0 (or None)")
        if max_items is not None and (int(max_items) != max_items or max_items < 0):
            raise ConfigError(f"image cache max_items={max_items!r} must be an integer >= 0")
        self.max_mb = max_mb
        self.max_items = max_items
        self._max_bytes = None if max_mb is None else int(max_mb * 1024 * 1024)
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        _ALL_CACHES.add(self)

    # -- pickling (spawned DataLoader workers): limits travel, contents and lock do not
    def __reduce__(self) -> tuple[Callable[..., ImageCache], tuple[Any, ...]]:
        if self is _DEFAULT_CACHE[0]:
            return default_cache, ()
        return ImageCache, (self.max_mb, self.max_items)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sizes.clear()
            self._nbytes = 0

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value for ``key``; on a miss ``load()`` computes it (outside the lock)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
        value = load()
        self._store(key, value)
        return value

    def _store(self, key: Hashable, value: Any) -> None:
        size = _nbytes(value)
        if self.max_items == 0 or (self._max_bytes is not None and size > self._max_bytes):
            return
        with self._lock:
            if key in self._entries:  # another thread loaded it meanwhile
                return
            self._entries[key] = value
            self._sizes[key] = size
            self._nbytes += size
            while self._over_budget():
                old_key, _ = self._entries.popitem(last=False)
                self._nbytes -= self._sizes.pop(old_key)

    def _over_budget(self) -> bool:
        too_many = self.max_items is not None and len(self._entries) > self.max_items
        too_big = self._max_bytes is not None and self._nbytes > self._max_bytes
        return too_many or too_big

    def _reset_lock(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ImageCache(max_mb={self.max_mb}, max_items={self.max_items}, "
            f"items={len(self)}, mb={self._nbytes / 2**20:.1f}, hits={self.hits}, "
            f"misses={self.misses})"
        )


_DEFAULT_CACHE: list[ImageCache | None] = [None]
_ALL_CACHES: weakref.WeakSet[ImageCache] = weakref.WeakSet()


def default_cache() -> ImageCache:
    """The process-wide cache that datasets share unless given their own.

    Its size is ``$CL_BENCH_IMAGE_CACHE_MB`` megabytes (default 2048; 0 disables it).
    """
    if _DEFAULT_CACHE[0] is None:
        raw = os.environ.get(CACHE_MB_ENV, "")
        try:
            max_mb = float(raw) if raw.strip() else DEFAULT_CACHE_MB
        except ValueError:
            raise ConfigError(
                f"{CACHE_MB_ENV}={raw!r} is not a number; set it to the image cache size in "
                f"megabytes (e.g. 2048, or 0 to disable the cache)"
            ) from None
        _DEFAULT_CACHE[0] = ImageCache(max_mb=max_mb)
    return _DEFAULT_CACHE[0]


def _after_fork_in_child() -> None:
    """A lock held by another thread at fork time would stay locked forever in the child."""
    for cache in list(_ALL_CACHES):
        cache._reset_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
