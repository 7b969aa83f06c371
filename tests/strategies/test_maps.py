"""Gaussian smoothing and distance maps against scipy / closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from strategies.detectors.maps import (
    combine_levels,
    cosine_distance_map,
    gaussian_blur,
    gaussian_kernel1d,
    scipy_radius,
)


@pytest.mark.parametrize("shape", [(2, 1, 64, 48), (1, 1, 9, 13), (1, 2, 40, 40)])
def test_gaussian_blur_matches_scipy(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    maps = rng.random(shape)
    maps[..., 3, 5] = 20.0  # a spike near the border exercises the reflect boundary
    ours = gaussian_blur(torch.from_numpy(maps), sigma=4.0).numpy()
    reference = gaussian_filter(maps, sigma=(0, 0, 4.0, 4.0), truncate=4.0, mode="reflect")
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)


def test_gaussian_blur_float32_and_kernel() -> None:
    maps = torch.rand(1, 1, 32, 32)
    reference = gaussian_filter(maps.double().numpy(), sigma=(0, 0, 2.5, 2.5))
    np.testing.assert_allclose(gaussian_blur(maps, 2.5).numpy(), reference, atol=1e-6)
    kernel = gaussian_kernel1d(4.0)
    assert kernel.numel() == 2 * scipy_radius(4.0) + 1 == 33
    assert torch.isclose(kernel.sum(), torch.tensor(1.0))


def test_cosine_distance_equals_half_squared_normalised_distance() -> None:
    t, s = torch.randn(2, 5, 4, 4), torch.randn(2, 5, 4, 4)
    tn = t / t.norm(dim=1, keepdim=True)
    sn = s / s.norm(dim=1, keepdim=True)
    half_sq = 0.5 * ((tn - sn) ** 2).sum(1, keepdim=True)
    torch.testing.assert_close(cosine_distance_map(t, s), half_sq, atol=1e-5, rtol=1e-5)
    assert cosine_distance_map(t, t).abs().max() < 1e-5


def test_combine_levels_sum_and_product() -> None:
    a, b = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 4, 4), 3.0)
    assert combine_levels([a, b], (8, 8), "sum").shape == (1, 1, 8, 8)
    assert torch.allclose(combine_levels([a, b], (8, 8), "sum"), torch.tensor(5.0))
    assert torch.allclose(combine_levels([a, b], (8, 8), "product"), torch.tensor(6.0))
    with pytest.raises(ValueError, match="unknown level combination"):
        combine_levels([a], (8, 8), "max")
