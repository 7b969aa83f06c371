"""Anomaly-map helpers shared by the detectors: per-pixel distances, upsampling, smoothing.

The Gaussian filter is written here in torch (a separable convolution) rather than called from
``scipy.ndimage.gaussian_filter`` so that maps stay on the detector's device (GPU) and in the
autograd-free torch pipeline; it reproduces scipy's defaults exactly: kernel radius
``int(truncate * sigma + 0.5)`` (16 for sigma 4, truncate 4), weights
``exp(-x^2 / (2 sigma^2))`` normalised to sum 1, and the ``"reflect"`` boundary (half-sample
symmetric: ``d c b a | a b c d | d c b a``).

Every map function runs in float32 outside autocast (:func:`float32_outside_autocast`), whatever
autocast context the caller is in (``performance.autocast_bf16``): a bfloat16 map keeps about a
hundred distinct values on a 128x128 image, which floods pixel AUROC and AU-PRO with ties.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

#: smoothing of every detector's final map (RD4AD, Deng & Li 2022; applied to all three here)
DEFAULT_SIGMA = 4.0
DEFAULT_TRUNCATE = 4.0

_F = TypeVar("_F", bound=Callable)


def _to_float32(value):
    if isinstance(value, Tensor) and value.is_floating_point() and value.dtype != torch.float64:
        return value.float()
    if isinstance(value, list | tuple):
        return type(value)(_to_float32(v) for v in value)
    return value


def _autocast_off(args) -> torch.autocast:
    devices = [a.device.type for a in args if isinstance(a, Tensor)]
    devices += [t.device.type for a in args if isinstance(a, list | tuple)
                for t in a if isinstance(t, Tensor)]
    return torch.autocast(devices[0] if devices else "cpu", enabled=False)


def float32_outside_autocast(fn: _F) -> _F:
    """Run ``fn`` with autocast off for its tensors' device and its (lists of) floating-point
    tensor arguments cast to float32 (float64 is kept); gradients flow through the cast."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _autocast_off(args):
            return fn(*_to_float32(args), **{k: _to_float32(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


@float32_outside_autocast
def cosine_distance_map(teacher: Tensor, student: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-pixel ``1 - cos(t, s)`` along channels: (B, C, H, W) x 2 -> (B, 1, H, W).

    Equals ``0.5 * ||t/|t| - s/|s| ||^2`` (STPM's distance of channel-normalised features).
    """
    return 1.0 - F.cosine_similarity(teacher, student, dim=1, eps=eps).unsqueeze(1)


@float32_outside_autocast
def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, 1, h, w) maps to ``size`` (``align_corners=False``)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def gaussian_kernel1d(sigma: float, truncate: float = DEFAULT_TRUNCATE,
                      dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """scipy's 1-D Gaussian kernel: radius ``int(truncate*sigma + 0.5)``, normalised to sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    kernel = kernel / kernel.sum()
    return kernel.to(dtype=dtype, device=device)


def _symmetric_indices(n: int, radius: int, device) -> Tensor:
    """Indices of scipy's "reflect" extension of a length-``n`` axis by ``radius`` both sides."""
    index = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(index < n, index, 2 * n - 1 - index)


@float32_outside_autocast
def gaussian_blur(maps: Tensor, sigma: float = DEFAULT_SIGMA,
                  truncate: float = DEFAULT_TRUNCATE) -> Tensor:
    """Gaussian smoothing of (B, C, H, W) maps over H and W, like ``scipy.ndimage.gaussian_filter``
    with ``sigma=(0, 0, sigma, sigma)``, ``mode="reflect"``, ``truncate=truncate``."""
    if sigma <= 0:
        return maps
    b, c, h, w = maps.shape
    kernel = gaussian_kernel1d(sigma, truncate, dtype=maps.dtype, device=maps.device)
    radius = (kernel.numel() - 1) // 2
    x = maps.reshape(b * c, 1, h, w)
    x = x.index_select(2, _symmetric_indices(h, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    x = x.index_select(3, _symmetric_indices(w, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return x.reshape(b, c, h, w)


@float32_outside_autocast
def combine_levels(level_maps: list[Tensor], size: tuple[int, int], mode: str) -> Tensor:
    """Upsample per-level maps (B, 1, h_l, w_l) to ``size`` and add (``"sum"``) or multiply
    (``"product"``) them."""
    upsampled = [upsample(m, size) for m in level_maps]
    if mode == "sum":
        return torch.stack(upsampled).sum(0)
    if mode == "product":
        return torch.stack(upsampled).prod(0)
    raise ValueError(f"unknown level combination {mode!r}; use 'sum' or 'product'")


def scipy_radius(sigma: float, truncate: float = DEFAULT_TRUNCATE) -> int:
    """Kernel radius scipy uses (for documentation and tests)."""
    return math.floor(truncate * sigma + 0.5)
