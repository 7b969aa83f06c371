"""Teacher-feature cache: store accounting, keys, exactness, detectors, deepcopy."""

from __future__ import annotations

import copy

import pytest
import torch

from strategies.detectors import build_detector
from strategies.teachers.backbones import build_teacher
from strategies.teachers.teacher_cache import (
    CachedTeacher,
    FeatureStore,
    TeacherCacheError,
    attach_teacher_cache,
    detach_teacher_cache,
    image_keys,
)

SIZE = 32


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return build_teacher("resnet18", "none")


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def entry(nbytes_each: int) -> list[torch.Tensor]:
    return [torch.zeros(nbytes_each // 4, dtype=torch.float32)]


def test_store_counts_hits_and_misses():
    store = FeatureStore(max_mb=1, dtype=torch.float32)
    assert store.get("a") is None
    store.put("a", entry(400))
    assert store.get("a") is not None
    assert (store.hits, store.misses, len(store), store.nbytes) == (1, 1, 1, 400)


def test_store_evicts_least_recently_used_by_bytes():
    store = FeatureStore(max_mb=1000 / 2**20, dtype=torch.float32)  # 1000 bytes
    store.put("a", entry(400))
    store.put("b", entry(400))
    store.get("a")  # "b" is now the least recently used
    store.put("c", entry(400))
    assert "a" in store and "c" in store and "b" not in store
    assert store.nbytes == 800 and store.evictions == 1
    store.put("big", entry(2000))  # larger than the store: returned, not stored
    assert "big" not in store and store.nbytes == 800


def test_store_float16_halves_the_bytes():
    store = FeatureStore(max_mb=1, dtype=torch.float16)
    stored = store.put("a", entry(400))
    assert stored[0].dtype == torch.float16 and store.nbytes == 200


def test_store_rejects_bad_settings():
    with pytest.raises(TeacherCacheError, match="max_mb"):
        FeatureStore(max_mb=-1)
    with pytest.raises(TeacherCacheError, match="dtype"):
        FeatureStore(max_mb=1, dtype=torch.int8)


@pytest.mark.parametrize("method", ["blake2b", "multilinear"])
def test_keys_do_not_depend_on_the_batch(method):
    x = images(4)
    other = torch.cat([images(3, seed=1), x[2:3], x[0:1]])
    keys, keys_other = image_keys(x, method=method), image_keys(other, method=method)
    assert keys_other[3] == keys[2] and keys_other[4] == keys[0]
    assert len(set(keys)) == 4  # different images, different keys
    changed = x[0:1].clone()
    changed[0, 1, 5, 7] += 1e-6  # one pixel, one low-order bit or so
    assert image_keys(changed, method=method)[0] != keys[0]


def test_keys_include_the_shape():
    x = torch.zeros(1, 3, 8, 8)
    assert image_keys(x)[0] != image_keys(x.reshape(1, 3, 4, 16))[0]


def test_float32_cache_gives_the_teachers_features_exactly(teacher):
    x = images(4)
    cached = CachedTeacher(teacher, FeatureStore(max_mb=64, dtype=torch.float32))
    reference = teacher(x)
    first, second = cached(x), cached(x)
    for ref, a, b in zip(reference, first, second, strict=True):
        assert torch.equal(ref, a) and torch.equal(ref, b)
    assert cached.store.misses == 4 and cached.store.hits == 4


def test_cache_runs_the_teacher_only_on_misses(teacher):
    calls: list[int] = []
    handle = teacher.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    try:
        cached = CachedTeacher(teacher, FeatureStore(max_mb=64, dtype=torch.float32))
        x = images(4)
        cached(x[:2])
        mixed = torch.cat([x[1:2], x[2:4], x[0:1]])  # seen images in new positions
        out = cached(mixed)
    finally:
        handle.remove()
    assert calls == [2, 2]  # the second call computed only the two new images
    reference = teacher(mixed)
    for ref, got in zip(reference, out, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_float16_cache_within_tolerance(teacher):
    x = images(3)
    cached = CachedTeacher(teacher, FeatureStore(max_mb=64, dtype=torch.float16))
    for ref, got in zip(teacher(x), cached(x), strict=True):
        assert got.dtype == torch.float32
        scale = ref.abs().amax()
        assert (got - ref).abs().max() <= 1e-3 * scale
    assert cached.store.nbytes == sum(f.numel() * 2 for f in teacher(x))


def test_wrapper_keeps_the_teachers_attributes_and_stays_frozen(teacher):
    cached = CachedTeacher(teacher, FeatureStore(max_mb=1))
    assert (cached.channels, cached.strides, cached.nonnegative, cached.name) == (
        teacher.channels, teacher.strides, teacher.nonnegative, teacher.name)
    cached.train()
    assert not cached.training and not teacher.training
    assert all(not p.requires_grad for p in cached.parameters())


@pytest.mark.parametrize("name", ["stpm", "rd4ad"])
def test_detector_loss_and_maps_equal_with_the_cache(name):
    torch.manual_seed(0)
    small = {"rd4ad": {"width": 0.25, "ocbe_blocks": 1, "decoder_blocks": (1, 1, 1)}}
    detector = build_detector(name, backbone="resnet18", weights="none",
                              **small.get(name, {})).eval()
    x = images(4)
    plain_maps, plain_loss = detector.anomaly_map(x), detector.loss(x).total.detach()
    store = FeatureStore(max_mb=64, dtype=torch.float32)
    attach_teacher_cache(detector, store)
    attach_teacher_cache(detector, store)  # idempotent: wrapped once
    assert isinstance(detector.teacher, CachedTeacher)
    assert not isinstance(detector.teacher.teacher, CachedTeacher)
    assert torch.equal(detector.anomaly_map(x), plain_maps)  # first pass: misses, same batch
    loss = detector.loss(x).total  # second pass: hits
    assert (store.misses, store.hits) == (4, 4)
    torch.testing.assert_close(loss.detach(), plain_loss, rtol=0, atol=1e-6)
    detector.train()
    detector.loss(x).total.backward()  # students still get gradients from cached features
    assert all(p.grad is not None for p in detector.trainable_parameters())
    plain = detach_teacher_cache(detector)
    assert detector.teacher is plain and not isinstance(plain, CachedTeacher)


def test_deepcopy_shares_teacher_and_store():
    detector = build_detector("stpm", backbone="resnet18", weights="none")
    store = FeatureStore(max_mb=16, dtype=torch.float16)
    attach_teacher_cache(detector, store)
    clone = copy.deepcopy(detector)
    assert clone.teacher is detector.teacher and clone.teacher.store is store
    assert copy.deepcopy(store) is store
    clone.eval()
    clone.anomaly_map(images(2))
    detector.eval()
    detector.anomaly_map(images(2))
    assert store.hits == 2 and store.misses == 2


def test_teachers_with_other_weights_do_not_share_entries():
    torch.manual_seed(0)
    a = build_detector("stpm", backbone="resnet18", weights="none")
    torch.manual_seed(1)
    b = build_detector("stpm", backbone="resnet18", weights="none")
    store = FeatureStore(max_mb=16, dtype=torch.float32)
    attach_teacher_cache(a, store)
    attach_teacher_cache(b, store)
    a.teacher(images(2))
    b.teacher(images(2))
    assert store.hits == 0 and len(store) == 4


def test_attach_rejects_a_module_without_hidden_teacher():
    with pytest.raises(TeacherCacheError, match="set_teacher"):
        attach_teacher_cache(torch.nn.Linear(2, 2), FeatureStore(max_mb=1))


def test_to_moves_the_wrapped_teacher():
    detector = build_detector("stpm", backbone="resnet18", weights="none")
    attach_teacher_cache(detector, FeatureStore(max_mb=1))
    detector.to(torch.float64)
    assert next(detector.teacher.teacher.parameters()).dtype == torch.float64


def test_features_cached_under_inference_mode_can_train_a_student():
    detector = build_detector("rd4ad", backbone="resnet18", weights="none", width=0.25,
                              ocbe_blocks=1, decoder_blocks=(1, 1, 1))
    attach_teacher_cache(detector, FeatureStore(max_mb=16, dtype=torch.float32))
    x = images(2)
    with torch.inference_mode():
        detector.eval()
        detector.anomaly_map(x)  # evaluation stores the features as inference tensors
    detector.train()
    detector.loss(x).total.backward()  # the hits must still be usable by autograd
    assert detector.teacher.store.hits == 2
