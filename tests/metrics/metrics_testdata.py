"""Test data and an independent brute-force AU-PRO shared by the metric tests."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage


def random_task(seed: int, n: int = 5, size: int = 12, quantize: float | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """float32 maps and bool masks with several components (and a few ties if quantized)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(0, n, 2):
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(0, size - 2, 2)
            h, w = rng.integers(1, 5, 2)
            masks[i, y:y + h, x:x + w] = True
    maps = rng.normal(size=masks.shape) + masks * rng.uniform(0.5, 2.0)
    if quantize:
        maps = np.round(maps / quantize) * quantize
    return maps.astype(np.float32), masks


def brute_force_au_pro(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """Loop over every distinct threshold; regions per image, 8-connected; written for tests."""
    regions = []
    for i in range(len(masks)):
        labels, k = ndimage.label(masks[i], structure=np.ones((3, 3)))
        regions += [maps[i][labels == c] for c in range(1, k + 1)]
    good = maps[~masks]
    points = [(0.0, 0.0)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        points.append((float(np.mean(good >= t)), float(np.mean([np.mean(r >= t)
                                                                  for r in regions]))))
    points.append((1.0, 1.0))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= limit:
            break
        if x1 <= limit:
            area += (x1 - x0) * (y0 + y1) / 2
        else:
            y_at = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += (limit - x0) * (y0 + y_at) / 2
            break
    return area / limit
