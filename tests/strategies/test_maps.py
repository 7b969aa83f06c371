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


# ---- the detectors' maps against their formulas, written out here ---------------------------
def _random_output(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]  # strides 4, 8, 16 of 64 px
    teacher = [torch.randn(s, generator=g) for s in shapes]
    student = [t + 0.8 * torch.randn(t.shape, generator=g) for t in teacher]
    return teacher, student


def _bilinear(m: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(m, size=(size, size), mode="bilinear",
                                           align_corners=False)


def _smooth(m: torch.Tensor) -> np.ndarray:
    return gaussian_filter(m.double().numpy(), sigma=(0, 0, 4.0, 4.0), truncate=4.0,
                           mode="reflect")


def test_stpm_map_is_the_product_of_upsampled_half_squared_normalised_distances() -> None:
    from strategies.detectors import build_detector
    from strategies.detectors.base import DetectorOutput

    teacher, student = _random_output(0)
    expected = torch.ones(2, 1, 64, 64)
    for t, s in zip(teacher, student, strict=True):
        t_hat = t / t.norm(dim=1, keepdim=True)
        s_hat = s / s.norm(dim=1, keepdim=True)
        level = 0.5 * ((t_hat - s_hat) ** 2).sum(dim=1, keepdim=True)
        expected = expected * _bilinear(level, 64)
    stpm = build_detector("stpm", weights="none")
    got = stpm.anomaly_map_from_output(DetectorOutput(teacher, {"forward": student}), (64, 64))
    np.testing.assert_allclose(got.numpy(), _smooth(expected), rtol=1e-4, atol=1e-6)


def test_rd4ad_map_is_the_sum_of_upsampled_cosine_distances_smoothed_sigma_4() -> None:
    from strategies.detectors import build_detector
    from strategies.detectors.base import DetectorOutput

    teacher, student = _random_output(1)
    expected = torch.zeros(2, 1, 64, 64)
    for t, s in zip(teacher, student, strict=True):
        cos = (t * s).sum(dim=1, keepdim=True) / (t.norm(dim=1, keepdim=True)
                                                  * s.norm(dim=1, keepdim=True))
        expected = expected + _bilinear(1.0 - cos, 64)
    rd4ad = build_detector("rd4ad", weights="none", width=0.25, decoder_blocks=[1, 1, 1],
                           ocbe_blocks=1)
    got = rd4ad.anomaly_map_from_output(DetectorOutput(teacher, {"reverse": student}), (64, 64))
    np.testing.assert_allclose(got.numpy(), _smooth(expected), rtol=1e-4, atol=1e-6)


# ---- float32 under autocast -----------------------------------------------------------------
def test_maps_stay_float32_under_bf16_autocast() -> None:
    """A bfloat16 map of 128x128 keeps about a hundred distinct values (ties flood AUROC)."""
    teacher, student = _random_output(2)
    teacher16 = [t.bfloat16() for t in teacher]  # what a backbone under autocast returns
    student16 = [s.bfloat16() for s in student]

    def fused_map(ts, ss):
        levels = [cosine_distance_map(t, s) for t, s in zip(ts, ss, strict=True)]
        return gaussian_blur(combine_levels(levels, (128, 128), "sum"), 4.0)

    reference = fused_map([t.float() for t in teacher16], [s.float() for s in student16])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fused_map(teacher16, student16)
    assert got.dtype == torch.float32
    assert torch.unique(got[0]).numel() > 10_000  # of 16,384 pixels
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["stpm", "rd4ad"])
def test_detector_map_under_bf16_autocast_has_float32_resolution(name: str) -> None:
    from strategies.detectors import build_detector

    torch.manual_seed(0)
    options = {} if name == "stpm" else {"width": 0.25, "decoder_blocks": [1, 1, 1],
                                         "ocbe_blocks": 1}
    detector = build_detector(name, weights="none", **options).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = detector(x)
        got = detector.anomaly_map_from_output(output, (128, 128))
    float_features = type(output)([t.float() for t in output.teacher],
                                  {k: [s.float() for s in v] for k, v in output.students.items()})
    reference = detector.anomaly_map_from_output(float_features, (128, 128))
    assert got.dtype == torch.float32
    assert torch.unique(got).numel() > 10_000
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
