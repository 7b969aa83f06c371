"""Streaming per-task evaluation: batches in, the same numbers as the one-shot functions out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metrics_testdata import random_task

from cl_bench.metrics import (
    ALL_KEYS,
    MetricInputError,
    TaskEvaluator,
    UndefinedMetricWarning,
    au_pro,
    image_ap,
    image_auroc,
    pixel_ap,
    pixel_auroc,
)


def task_batches(seed: int = 0, n: int = 9, batch: int = 4):
    maps, masks = random_task(seed, n=n, size=10)
    scores = maps.reshape(n, -1).max(axis=1) + np.random.default_rng(seed).normal(size=n) * 0.1
    labels = masks.reshape(n, -1).any(axis=1).astype(np.int64)
    for lo in range(0, n, batch):
        sl = slice(lo, lo + batch)
        yield maps[sl, None], masks[sl, None].astype(np.float32), scores[sl], labels[sl]


def one_shot(seed: int = 0, n: int = 9) -> dict[str, float]:
    maps, masks, scores, labels = (np.concatenate(p) for p in zip(*task_batches(seed, n),
                                                                   strict=True))
    return {"image_auroc": image_auroc(scores, labels), "image_ap": image_ap(scores, labels),
            "pixel_auroc": pixel_auroc(maps, masks), "pixel_ap": pixel_ap(maps, masks),
            "au_pro": au_pro(maps, masks)}


@pytest.mark.parametrize("as_torch", [False, True])
def test_streaming_equals_one_shot(as_torch: bool) -> None:
    evaluator = TaskEvaluator(task="bottle")
    for maps, masks, scores, labels in task_batches():
        if as_torch:
            maps, masks = torch.from_numpy(maps), torch.from_numpy(masks)
            scores, labels = torch.from_numpy(scores), torch.from_numpy(labels)
        evaluator.update(maps, masks, scores, labels)
    result = evaluator.compute()
    assert tuple(result) == ALL_KEYS
    expected = one_shot()
    for key in ALL_KEYS:
        assert result[key] == pytest.approx(expected[key], rel=1e-12), key
    assert evaluator.n_images == 9
    assert evaluator.n_pixels == 9 * 100
    assert evaluator.state_nbytes == 9 * 100 * 5  # float32 map + bool mask per pixel


def test_defaults_scores_from_map_max_and_labels_from_masks() -> None:
    evaluator = TaskEvaluator(f1_max=True)
    all_maps, all_masks = [], []
    for maps, masks, _, _ in task_batches(1):
        evaluator.update(maps, masks)
        all_maps.append(maps)
        all_masks.append(masks)
    maps, masks = np.concatenate(all_maps), np.concatenate(all_masks)
    result = evaluator.compute()
    assert result["image_auroc"] == image_auroc(maps.reshape(len(maps), -1).max(axis=1),
                                                masks.reshape(len(masks), -1).max(axis=1))
    assert {"image_f1_max", "pixel_f1_max"} <= set(result)


def test_reset_forgets_the_previous_task_and_state_is_copied() -> None:
    evaluator = TaskEvaluator()
    first = next(iter(task_batches(2, n=4)))
    evaluator.update(*first)
    first[0][:] = 0.0  # the caller reuses its buffer: the evaluator kept a copy
    kept = evaluator.compute()
    assert kept["pixel_auroc"] != 0.5
    evaluator.reset(task="next")
    assert evaluator.n_images == 0 and evaluator.state_nbytes == 0
    with pytest.raises(MetricInputError, match="update"):
        evaluator.compute()


def test_pixel_false_keeps_no_maps() -> None:
    evaluator = TaskEvaluator(pixel=False)
    for batch in task_batches():
        evaluator.update(*batch)
    assert evaluator.state_nbytes == 0
    assert set(evaluator.compute()) == {"image_auroc", "image_ap"}


def test_undefined_task_gives_nan_with_its_name() -> None:
    evaluator = TaskEvaluator(task="toothbrush")
    evaluator.update(np.random.default_rng(0).random((3, 1, 4, 4)), np.zeros((3, 1, 4, 4)))
    with pytest.warns(UndefinedMetricWarning, match="task 'toothbrush'"):
        result = evaluator.compute()
    assert all(np.isnan(v) for v in result.values())


def test_inconsistent_batches_are_rejected() -> None:
    evaluator = TaskEvaluator(task="pill")
    maps, masks, scores, labels = next(iter(task_batches()))
    evaluator.update(maps, masks, scores, labels)
    with pytest.raises(MetricInputError, match="scores for every batch or for none"):
        evaluator.update(maps, masks)
    with pytest.raises(MetricInputError, match="share one size"):
        evaluator.update(maps[..., :5], masks[..., :5], scores, labels)
    with pytest.raises(MetricInputError, match=r"label 0 \(good\) but its mask"):
        evaluator.update(maps, masks, scores, np.zeros_like(labels))
    with pytest.raises(MetricInputError, match="3 image scores/labels for 4 maps"):
        evaluator.update(maps, masks, scores[:3], labels[:3])
    with pytest.raises(MetricInputError, match=r"task 'pill'.*binary"):
        evaluator.update(maps, masks * 2, scores, labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_storage_equals_cpu() -> None:
    cpu, gpu = TaskEvaluator(), TaskEvaluator(device="cuda")
    for maps, masks, scores, labels in task_batches():
        cpu.update(maps, masks, scores, labels)
        gpu.update(torch.from_numpy(maps).cuda(), torch.from_numpy(masks).cuda(), scores, labels)
    a, b = cpu.compute(), gpu.compute()
    for key in ALL_KEYS:
        assert b[key] == pytest.approx(a[key], rel=1e-12)


@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_au_pro_uses_the_evaluators_fpr_limit(limit: float) -> None:
    evaluator = TaskEvaluator(fpr_limit=limit)
    batches = list(task_batches(3))
    for batch in batches:
        evaluator.update(*batch)
    maps = np.concatenate([b[0] for b in batches])[:, 0]
    masks = np.concatenate([b[1] for b in batches])[:, 0]
    assert evaluator.compute()["au_pro"] == pytest.approx(au_pro(maps, masks, limit), rel=1e-9)
    assert au_pro(maps, masks, limit) != pytest.approx(au_pro(maps, masks, 0.3 if limit != 0.3
                                                              else 0.05), abs=1e-3)
