"""The one-ranking fast path equals scikit-learn and the exact AU-PRO (numpy and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_testdata import brute_force_au_pro, random_task
from sklearn.metrics import average_precision_score, roc_auc_score

from cl_bench.errors import ConfigError
from cl_bench.metrics import UndefinedMetricWarning, au_pro, pixel_f1_max, pixel_metrics
from cl_bench.metrics.ranking import ranked_pixel_metrics

REL_AUROC_AP = 1e-12
REL_AU_PRO = 1e-9


def reference(maps: np.ndarray, masks: np.ndarray, limit: float = 0.3) -> dict[str, float]:
    return {"pixel_auroc": roc_auc_score(masks.ravel(), maps.ravel()),
            "pixel_ap": average_precision_score(masks.ravel(), maps.ravel()),
            "au_pro": au_pro(maps, masks, limit),
            "pixel_f1_max": pixel_f1_max(maps, masks)}


def assert_matches(fast: dict[str, float], ref: dict[str, float]) -> None:
    for key in ("pixel_auroc", "pixel_ap", "pixel_f1_max"):
        if key in fast:
            assert fast[key] == pytest.approx(ref[key], rel=REL_AUROC_AP, abs=1e-15), key
    assert fast["au_pro"] == pytest.approx(ref["au_pro"], rel=REL_AU_PRO, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fast_path_equals_reference(seed: int, backend: str) -> None:
    maps, masks = random_task(seed, n=6, size=16, quantize=0.2 if seed % 2 else None)
    maps[0, 0, :3] = [-0.0, 0.0, -1.5]  # negative scores and signed zeros rank as floats do
    inputs = (maps, masks) if backend == "numpy" else (torch.from_numpy(maps),
                                                       torch.from_numpy(masks))
    fast = pixel_metrics(*inputs, f1_max=True)
    assert set(fast) == {"pixel_auroc", "pixel_ap", "au_pro", "pixel_f1_max"}
    assert_matches(fast, reference(maps, masks))


def test_extreme_float_values_rank_as_floats() -> None:
    values = np.array([-1e30, -1.0, -1e-40, -0.0, 0.0, 1e-45, 1e-40, 1e-30, 0.5, 1.0, 1e30],
                      dtype=np.float32)
    rng = np.random.default_rng(0)
    maps = rng.choice(values, size=(4, 8, 8)).astype(np.float32)
    masks = rng.random((4, 8, 8)) < 0.3
    assert_matches(pixel_metrics(maps, masks), reference(maps, masks))
    assert_matches(pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks)),
                   reference(maps, masks))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    maps, masks = random_task(0)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pixel_metrics(maps, masks, device="cuda")


@pytest.mark.parametrize("limit", [0.01, 0.3, 1.0])
def test_fast_au_pro_equals_brute_force(limit: float) -> None:
    maps, masks = random_task(7, quantize=0.3)
    fast = pixel_metrics(maps, masks, fpr_limit=limit)
    assert fast["au_pro"] == pytest.approx(brute_force_au_pro(maps, masks, limit), rel=1e-9)


def test_float64_maps_are_not_rounded_to_float32() -> None:
    maps, masks = random_task(3)
    maps64 = maps.astype(np.float64)
    maps64[masks] += 1e-12  # distinct in float64, equal in float32
    fast = pixel_metrics(maps64, masks)
    assert_matches(fast, reference(maps64, masks))
    assert_matches(pixel_metrics(torch.from_numpy(maps64), torch.from_numpy(masks)),
                   reference(maps64, masks))


def test_hand_cases() -> None:
    _, masks = random_task(0)
    perfect = pixel_metrics(masks.astype(np.float32), masks)
    assert perfect == {"pixel_auroc": 1.0, "pixel_ap": 1.0, "au_pro": 1.0}
    reversed_ = pixel_metrics((~masks).astype(np.float32), masks)
    assert reversed_["pixel_auroc"] == 0.0 and reversed_["au_pro"] == 0.0
    const = pixel_metrics(np.zeros(masks.shape, np.float32), masks)
    assert const["pixel_auroc"] == 0.5
    assert const["au_pro"] == pytest.approx(0.15, abs=1e-15)


def test_chunks_give_the_same_as_one_array() -> None:
    maps, masks = random_task(4, n=7)
    whole = pixel_metrics(maps, masks)
    chunked = ranked_pixel_metrics([maps[:3], maps[3:5], maps[5:]],
                                   [masks[:3], masks[3:5], masks[5:]])
    assert chunked == whole


def test_undefined_gives_nan_with_the_task() -> None:
    maps = np.ones((2, 3, 3), dtype=np.float32)
    with pytest.warns(UndefinedMetricWarning, match="task 'wood'"):
        out = pixel_metrics(maps, np.zeros((2, 3, 3)), task="wood")
    assert all(np.isnan(v) for v in out.values())


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(2, 9),
       st.sampled_from([None, 0.5, 1.0]), st.sampled_from([0.3, 0.1, 1.0]))
def test_fast_path_property(seed: int, n: int, size: int, quantize: float | None,
                            limit: float) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.random((n, size, size)) < rng.uniform(0.05, 0.6)
    masks.flat[0], masks.flat[-1] = True, False  # both classes present
    maps = rng.normal(size=masks.shape) + masks
    if quantize:
        maps = np.round(maps / quantize) * quantize
    maps = maps.astype(np.float32)
    fast = pixel_metrics(maps, masks, fpr_limit=limit, f1_max=True)
    assert_matches(fast, reference(maps, masks, limit))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_equals_reference() -> None:
    maps, masks = random_task(5, n=8, size=32)
    fast = pixel_metrics(torch.from_numpy(maps).cuda(), torch.from_numpy(masks).cuda())
    assert_matches(fast, reference(maps, masks))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_ranking_path_on_cpu_tensors(dtype: torch.dtype) -> None:
    """``_rank_torch`` (the GPU path) run with CPU tensors: float32 takes the packed-key sort,
    float64 the sort of the negated maps; both equal the numpy path and scikit-learn."""
    maps, masks = random_task(3, n=5, size=12, quantize=0.25)
    maps_t = torch.from_numpy(maps).to(dtype)
    expected = reference(maps_t.numpy().astype(np.float64), masks)
    chunks = [maps_t[:2], maps_t[2:]]
    mask_chunks = [torch.from_numpy(masks[:2]), torch.from_numpy(masks[2:])]
    fast = ranked_pixel_metrics(chunks, mask_chunks, f1_max=True)
    assert_matches(fast, expected)
    numpy_path = ranked_pixel_metrics([c.numpy() for c in chunks], [masks[:2], masks[2:]],
                                      f1_max=True)
    for key, value in numpy_path.items():
        assert fast[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
