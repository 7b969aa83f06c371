"""Teacher-feature cache: the frozen teacher's features of each image, computed once per run.

The teacher never changes, yet a run passes every training image through it every epoch and
every test image through it after every task (T x (T+1) evaluations of each test set). With
:func:`attach_teacher_cache` the detector's hidden teacher is replaced by a
:class:`CachedTeacher`, which looks every image up in a :class:`FeatureStore` by a *content*
fingerprint and runs the real teacher only on the images it has not seen (one sub-batch).

Keys. Items carry no path and replay mixes datasets, so an image is known by its pixels:

- CPU tensors: ``blake2b`` (128-bit digest) of the image's contiguous float32 bytes: exact
  identity of the pixels.
- CUDA tensors (no device->host copy of the images): a multilinear hash on the device. The
  float32 bit patterns ``b_i`` (as int64) are combined with ``K = 2`` seeded random 64-bit
  multipliers ``r_k,i``: ``h_k = sum_i b_i * r_k,i  mod 2^64``. Integer addition modulo 2^64 is
  associative, so ``h_k`` is the same whatever the reduction order, batch size or position of
  the image in the batch (a float dot product would not be). Collisions: two different images
  differ by ``d = b - b'`` (each ``|d_i| < 2^32``, so its lowest set bit ``t <= 31``);
  for uniform random multipliers ``P[sum_i d_i r_i = 0 mod 2^64] = 2^(t-64) <= 2^-33``
  per hash, so ``<= 2^-66`` for the two independent hashes, i.e. below 1e-12 for all pairs among
  a million images.

Both keys also hold the image shape and the teacher's identity (its name and a fingerprint of its
weights), so one store can be shared by several detectors: only teachers with identical
weights share entries.

Semantics. With ``dtype=torch.float32`` the cached features are the teacher's own output for the
image, bit for bit, in the batch where the image was first seen; a later uncached call may
differ in the low-order bits only because convolution kernels (CPU and GPU) may sum in another
order for another batch composition (a run without the cache shuffles its batches anyway).
With ``dtype=torch.float16`` the features are rounded to half precision (relative error about
``2^-11 ~ 5e-4``, under 1e-3); the cached value is returned every time, including on the miss
that stored it, so a run is consistent with itself. Measured tolerances of records on a whole
run are in docs/performance.md, "Teacher-feature cache".

Use only where the teacher's input for an image is always the same (no random augmentation
applied before the teacher); otherwise every augmented image is a miss and the cache only costs.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence

import torch
from torch import Tensor, nn

from strategies.errors import StrategiesError

#: number of independent 64-bit multilinear hashes in a CUDA key (collision bound 2^-33 each)
DEVICE_HASHES = 2
_MULTIPLIER_SEED = 0x5EED_CAC4E
_MB = 1024 * 1024


class TeacherCacheError(StrategiesError, ValueError):
    """A bad cache setting (size, dtype) or a teacher that cannot be wrapped."""


# ---- the store -------------------------------------------------------------------------------
class FeatureStore:
    """Least-recently-used store of per-image teacher features, bounded in megabytes.

    Written by hand because ``functools.lru_cache`` bounds the number of entries, not bytes.
    An entry is a tuple of tensors (one per teacher level, ``(C_l, H_l, W_l)``) kept in
    ``dtype`` on ``device`` (``None``: where the features were computed). ``hits``,
    ``misses``, ``evictions`` count lookups and removals; ``nbytes`` is the stored total.
    A store is shared, never copied: ``copy.deepcopy`` returns the store itself.
    """

    def __init__(self, max_mb: float, dtype: torch.dtype = torch.float16,
                 device: str | torch.device | None = None) -> None:
        if not max_mb >= 0:
            raise TeacherCacheError(f"teacher cache size max_mb={max_mb!r} must be >= 0 (MB)")
        if dtype not in (torch.float16, torch.float32, torch.bfloat16):
            raise TeacherCacheError(
                f"teacher cache dtype {dtype} is not supported; use torch.float32 (exact) or "
                "torch.float16 (half the memory, relative error ~1e-3)")
        self.max_bytes = int(max_mb * _MB)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None
        self._entries: OrderedDict[Hashable, tuple[Tensor, ...]] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __deepcopy__(self, memo: dict) -> FeatureStore:
        return self

    def get(self, key: Hashable) -> tuple[Tensor, ...] | None:
        """The entry for ``key`` (now the most recently used), or None; counts a hit or miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Hashable, features: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """Store copies of ``features`` (cast to the store dtype); evict the least recently used
        entries until it fits. Return the stored tensors (not stored when larger than the whole
        store; then the cast copies are returned all the same)."""
        entry = tuple(f.detach().to(device=self.device or f.device, dtype=self.dtype, copy=True)
                      for f in features)
        size = sum(t.numel() * t.element_size() for t in entry)
        if key in self._entries:
            self._remove(key)
        if size > self.max_bytes:
            return entry
        while self.nbytes + size > self.max_bytes:
            self._remove(next(iter(self._entries)))
            self.evictions += 1
        self._entries[key] = entry
        self.nbytes += size
        return entry

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self.nbytes -= sum(t.numel() * t.element_size() for t in entry)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def stats(self) -> dict[str, float]:
        looked_up = self.hits + self.misses
        return {"entries": len(self), "mb": self.nbytes / _MB, "max_mb": self.max_bytes / _MB,
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "hit_rate": self.hits / looked_up if looked_up else float("nan")}

    def __repr__(self) -> str:
        s = self.stats()
        return (f"FeatureStore({s['entries']} images, {s['mb']:.1f}/{s['max_mb']:.0f} MB, "
                f"{self.dtype}, hits={self.hits}, misses={self.misses})")


# ---- content keys ----------------------------------------------------------------------------
_multipliers: dict[tuple[int, str], Tensor] = {}


def _device_multipliers(length: int, device: torch.device) -> Tensor:
    """(DEVICE_HASHES, length) int64 random multipliers, seeded, cached per length and device."""
    key = (length, str(device))
    if key not in _multipliers:
        generator = torch.Generator().manual_seed(_MULTIPLIER_SEED)
        r = torch.randint(-(2**63), 2**63 - 1, (DEVICE_HASHES, length), generator=generator,
                          dtype=torch.int64)
        _multipliers[key] = r.to(device)
    return _multipliers[key]


def multilinear_hashes(images: Tensor) -> list[tuple[int, ...]]:
    """``h_k = sum_i bits(x_i) * r_k,i mod 2^64`` per image, on the images' device (exact
    integer arithmetic: independent of reduction order and batch composition)."""
    flat = images.detach().reshape(images.shape[0], -1).to(torch.float32).contiguous()
    bits = flat.view(torch.int32).to(torch.int64)
    r = _device_multipliers(bits.shape[1], bits.device)
    hashes = torch.stack([(bits * r[k]).sum(dim=1) for k in range(DEVICE_HASHES)], dim=1)
    return [tuple(row) for row in hashes.cpu().tolist()]


def blake2b_digests(images: Tensor) -> list[bytes]:
    """128-bit blake2b digest of each image's contiguous float32 bytes (host tensors)."""
    flat = images.detach().reshape(images.shape[0], -1).to(torch.float32).cpu().contiguous()
    array = flat.numpy()
    return [hashlib.blake2b(array[i].tobytes(), digest_size=16).digest()
            for i in range(array.shape[0])]


def image_keys(images: Tensor, namespace: Hashable = "", method: str = "auto") -> list[tuple]:
    """One hashable key per image of ``images`` (B, ...): (namespace, shape, fingerprint).

    ``method``: "blake2b" (exact, on the host), "multilinear" (on the device) or "auto"
    (blake2b for CPU tensors, multilinear for the others).
    """
    if method == "auto":
        method = "blake2b" if images.device.type == "cpu" else "multilinear"
    if method == "blake2b":
        prints: list = blake2b_digests(images)
    elif method == "multilinear":
        prints = multilinear_hashes(images)
    else:
        raise TeacherCacheError(f"unknown key method {method!r}; use auto, blake2b or multilinear")
    shape = tuple(images.shape[1:])
    return [(namespace, method, shape, p) for p in prints]


def weights_fingerprint(module: nn.Module) -> str:
    """blake2b of every parameter and buffer (names, shapes, values): the teacher's identity."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---- the wrapper -----------------------------------------------------------------------------
class CachedTeacher(nn.Module):
    """A frozen teacher behind a :class:`FeatureStore`; same call and attributes as the teacher.

    ``forward(images)`` returns the teacher's levels for every image: stored features for the
    images seen before; the real teacher runs once on the others (one sub-batch, duplicates
    computed once) and its output is stored. Features come back in the images' dtype on the
    images' device. Always eval mode, never a gradient.
    """

    def __init__(self, teacher: nn.Module, store: FeatureStore, key_method: str = "auto") -> None:
        super().__init__()
        if isinstance(teacher, CachedTeacher):
            raise TeacherCacheError("the teacher is already cached; do not wrap it twice")
        self.teacher = teacher
        self.store = store
        self.key_method = key_method
        for attribute in ("channels", "strides", "nonnegative", "name"):
            if hasattr(teacher, attribute):
                setattr(self, attribute, getattr(teacher, attribute))
        self.namespace = (getattr(teacher, "name", type(teacher).__name__),
                          weights_fingerprint(teacher))
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        super().train(False)
        teacher.eval()

    def train(self, mode: bool = True) -> CachedTeacher:
        return super().train(False)  # the teacher never trains (BatchNorm statistics frozen)

    @torch.no_grad()
    def forward(self, images: Tensor) -> list[Tensor]:
        if images.shape[0] == 0:
            return list(self.teacher(images))
        keys = image_keys(images, self.namespace, self.key_method)
        found: list[tuple[Tensor, ...] | None] = [self.store.get(k) for k in keys]
        first_of: dict[Hashable, int] = {}
        for i, entry in enumerate(found):
            if entry is None and keys[i] not in first_of:
                first_of[keys[i]] = i
        if first_of:
            missing = list(first_of.values())
            subset = images if len(missing) == len(keys) else images[missing]
            self.teacher.eval()
            computed = self.teacher(subset)
            stored = {keys[i]: self.store.put(keys[i], [level[j] for level in computed])
                      for j, i in enumerate(missing)}
            found = [entry if entry is not None else stored[keys[i]]
                     for i, entry in enumerate(found)]
        levels = len(found[0])
        return [torch.stack([entry[level] for entry in found]).to(device=images.device,
                                                                   dtype=images.dtype)
                for level in range(levels)]

    def extra_repr(self) -> str:
        return f"store={self.store!r}"


def _check_hidden_teacher(detector: nn.Module) -> None:
    if not callable(getattr(detector, "set_teacher", None)):
        raise TeacherCacheError(
            f"{type(detector).__name__} has no hidden teacher (no set_teacher method); the "
            "teacher cache wraps the teacher of an AnomalyDetector")


def attach_teacher_cache(detector: nn.Module, store: FeatureStore,
                         key_method: str = "auto") -> CachedTeacher:
    """Put ``detector``'s teacher behind ``store``; idempotent (a cached teacher is kept, its
    store replaced by ``store``). Deep copies of the detector share the teacher and the store."""
    _check_hidden_teacher(detector)
    current = detector.teacher
    if isinstance(current, CachedTeacher):
        current.store = store
        current.key_method = key_method
        return current
    cached = CachedTeacher(current, store, key_method)
    detector.set_teacher(cached)
    return cached


def detach_teacher_cache(detector: nn.Module) -> nn.Module:
    """Give ``detector`` its plain teacher back (no-op when not cached); return the teacher."""
    _check_hidden_teacher(detector)
    if isinstance(detector.teacher, CachedTeacher):
        detector.set_teacher(detector.teacher.teacher)
    return detector.teacher


def cache_stats(detector: nn.Module) -> dict[str, float] | None:
    """The store's statistics when ``detector``'s teacher is cached, else None."""
    _check_hidden_teacher(detector)
    teacher = detector.teacher
    return teacher.store.stats() if isinstance(teacher, CachedTeacher) else None


__all__ = [
    "CachedTeacher",
    "FeatureStore",
    "TeacherCacheError",
    "attach_teacher_cache",
    "cache_stats",
    "detach_teacher_cache",
    "image_keys",
    "weights_fingerprint",
]
