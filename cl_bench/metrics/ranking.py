"""All pixel metrics of a task from ONE ranking of its pixels: pixel AUROC, pixel AP, AU-PRO.

Why by hand: scikit-learn sorts the pixels once per metric (AUROC, AP) and the official AU-PRO
sorts them again; a task of 150 maps of 256x256 has ~10M pixels (timings: docs/performance.md). Here
each pixel becomes one 64-bit key, ``(order-preserving bits of its float32 score) << 32 | region
id`` (region 0 = defect-free, 1..K = its ground-truth component), and a single plain sort of
the keys (numpy's SIMD sort on the CPU, CUDA's radix sort on a GPU; no argsort, no payload
arrays) ranks the pixels with everything the three metrics need. After the sort only the P
defect pixels are visited (~1-5% of all): for each, binary search in the sorted keys gives the
bounds of its group of tied scores, and counting positions gives, per group g (every distinct
threshold, high to low), TP_g and FP_g (defect / defect-free pixels ranked up to g):

- pixel AUROC = 1 - sum_p (2 FP_before(p) + FP_tied(p)) / (2 P N), an exact integer sum rounded
  once (the trapezoidal ROC area with ties counted half, as scikit-learn's);
- pixel AP = (1/P) sum_p TP_g(p) / (TP_g(p) + FP_g(p)) (scikit-learn's step-wise AP);
- AU-PRO: FPR = FP/N, PRO = (1/K) sum of 1/|C_k| over the defect pixels ranked so far
  (cumulative sum in extended precision); between groups holding defect pixels the curve is
  flat, so the corners of those groups give the exact curve; trapezoid with interpolation at the
  FPR limit (MVTec AD definition, :func:`cl_bench.metrics.anomaly.au_pro`);
- pixel F1-max = max_g 2 TP_g / (TP_g + FP_g + P).

Agreement with scikit-learn and with the exact AU-PRO of :mod:`cl_bench.metrics.anomaly` is
tested to 1e-12 (AUROC, AP) and 1e-9 (AU-PRO) relative.
float64 maps (not exactly representable as float32) take a float64 argsort path with the same
tail, so distinct scores are never merged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from cl_bench.errors import ConfigError
from cl_bench.metrics.anomaly import (
    CONNECTIVITY_2D,
    check_fpr_limit,
    trapezoid_area,
    undefined_reason,
)
from cl_bench.metrics.inputs import maps_and_masks, maps_and_masks_torch, undefined

PIXEL_KEYS = ("pixel_auroc", "pixel_ap", "au_pro")
_HI, _LO = (1, 0) if sys.byteorder == "little" else (0, 1)  # int32 halves of an int64 key
_FLIP = 0x7FFFFFFF


# ----------------------------------------------------------------------------- ground truth
def label_region_chunks(mask_chunks: Sequence[np.ndarray],
                        ) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Connected components (8-connectivity per image) numbered over all chunks.

    Returns the int32 region ids per chunk (0 = defect-free), the per-region weights
    ``w[k] = 1/|C_k|`` (w[0] = 0) and K.
    """
    regions, sizes, offset = [], [np.zeros(0, dtype=np.int64)], 0
    for masks in mask_chunks:
        labels = np.zeros(masks.shape, dtype=np.int32)
        for i in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):
            k = ndimage.label(masks[i], structure=CONNECTIVITY_2D, output=labels[i])
            sizes.append(np.bincount(labels[i][masks[i]], minlength=k + 1)[1:])
            labels[i][masks[i]] += offset
            offset += k
        regions.append(labels)
    weights = np.concatenate(([0.0], 1.0 / np.concatenate(sizes)))
    return regions, weights, offset


def _exact_in_float32(dtype: Any) -> bool:
    return np.dtype(dtype) in (np.float32, np.float16, np.bool_, np.uint8, np.int8,
                               np.uint16, np.int16)


# ----------------------------------------------------------------------------- the ranking
# A ranking is summarised by its defect pixels only (P of them, ~1-5% of the pixels): for each,
# in rank order, its position, the bounds [start, stop) of its group of tied scores and its
# region id. Everything else (defect-free pixels above / tied) follows by counting positions.

_LOW32 = np.int64(0xFFFFFFFF)
_BLOCK = 1 << 20


def _keys_numpy(maps: np.ndarray, regions: np.ndarray, out: np.ndarray) -> None:
    """Write ascending-order keys of ``maps`` (float32, high score first) with region payload.

    Blocks of 2^20 pixels keep the temporaries in the cache.
    """
    flat_maps, flat_regions = maps.ravel(), regions.ravel()
    for lo in range(0, flat_maps.size, _BLOCK):
        hi = lo + _BLOCK
        bits = (flat_maps[lo:hi].astype(np.float32) + np.float32(0.0)).view(np.int32)
        flip = bits >> 31  # -1 for negative floats: flip their magnitude bits to order them
        flip &= np.int32(_FLIP)
        bits ^= flip
        np.invert(bits, out=bits)  # high scores first
        block = out[lo:hi]
        block[:] = bits
        block <<= 32
        block |= flat_regions[lo:hi]


def _tie_bounds(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, stop) of the group of equal scores around each position in the sorted keys.

    Most scores of a real map are distinct: only pixels whose neighbours share their score
    need the binary search.
    """
    score = keys[positions] >> 32
    before = keys[np.maximum(positions - 1, 0)] >> 32
    after = keys[np.minimum(positions + 1, len(keys) - 1)] >> 32
    tied = np.flatnonzero(((before == score) & (positions > 0))
                          | ((after == score) & (positions < len(keys) - 1)))
    starts, stops = positions.copy(), positions + 1
    if tied.size:
        low = score[tied] << 32
        starts[tied] = np.searchsorted(keys, low, side="left")
        stops[tied] = np.searchsorted(keys, low | _LOW32, side="right")
    return starts, stops


def _rank_numpy(map_chunks: Sequence[np.ndarray], region_chunks: Sequence[np.ndarray],
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(positions, group starts, group stops, region ids) of the defect pixels, and n."""
    n = sum(m.size for m in map_chunks)
    if all(_exact_in_float32(m.dtype) for m in map_chunks):
        keys = np.empty(n, dtype=np.int64)
        start = 0
        for maps, regions in zip(map_chunks, region_chunks, strict=True):
            _keys_numpy(maps, regions, keys[start:start + maps.size])
            start += maps.size
        keys.sort()
        region_all = keys.view(np.int32).reshape(-1, 2)[:, _LO]
        positions = np.flatnonzero(region_all != 0)
        region = region_all[positions]
        starts, stops = _tie_bounds(keys, positions)
    else:  # float64 maps: argsort, so that no two distinct values are merged
        negated = -np.concatenate([m.ravel().astype(np.float64, copy=False) for m in map_chunks])
        order = np.argsort(negated)
        negated = negated[order]
        region_all = np.concatenate([r.ravel() for r in region_chunks])[order]
        positions = np.flatnonzero(region_all)
        region = region_all[positions]
        starts = np.searchsorted(negated, negated[positions], side="left")
        stops = np.searchsorted(negated, negated[positions], side="right")
    return positions, starts, stops, region, n


def _rank_torch(map_chunks: Sequence[torch.Tensor], region_chunks: Sequence[torch.Tensor],
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`_rank_numpy` in torch on the maps' device; returns the (small) numpy summary."""
    device = map_chunks[0].device
    n = sum(m.numel() for m in map_chunks)
    if all(m.dtype in (torch.float32, torch.float16, torch.bfloat16, torch.uint8, torch.bool)
           for m in map_chunks):
        keys = torch.empty(n, dtype=torch.int64, device=device)
        start = 0
        for maps, regions in zip(map_chunks, region_chunks, strict=True):
            bits = (maps.reshape(-1).to(torch.float32) + 0.0).view(torch.int32)
            bits = ~(bits ^ ((bits >> 31) & _FLIP))
            chunk = keys[start:start + maps.numel()]
            chunk.copy_(bits)
            chunk <<= 32
            chunk |= regions.reshape(-1).to(device=device, dtype=torch.int64)
            start += maps.numel()
        keys = torch.sort(keys).values
        region_all = keys.view(torch.int32).view(-1, 2)[:, _LO]
        positions = torch.nonzero(region_all).squeeze(1)
        region = region_all[positions]
        group_low = keys[positions] & ~0xFFFFFFFF
        starts = torch.searchsorted(keys, group_low)
        stops = torch.searchsorted(keys, group_low | 0xFFFFFFFF, right=True)
    else:
        negated = -torch.cat([m.reshape(-1).to(torch.float64) for m in map_chunks])
        negated, order = torch.sort(negated)
        region_all = torch.cat([r.reshape(-1).to(device) for r in region_chunks])[order]
        positions = torch.nonzero(region_all).squeeze(1)
        region = region_all[positions]
        starts = torch.searchsorted(negated, negated[positions])
        stops = torch.searchsorted(negated, negated[positions], right=True)
    return (positions.cpu().numpy(), starts.cpu().numpy(), stops.cpu().numpy(),
            region.cpu().numpy(), n)


def _metrics_from_ranking(positions: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                          region: np.ndarray, n: int, weights: np.ndarray, n_regions: int,
                          fpr_limit: float, f1_max: bool) -> dict[str, float]:
    """Pixel AUROC, AP, AU-PRO (and F1-max) from the defect pixels' places in the ranking."""
    n_pos = len(positions)
    n_neg = n - n_pos
    # defect pixels ranked before a group / up to its end (all of its ties included)
    tp_before = np.searchsorted(positions, starts, side="left")
    tp_end = np.searchsorted(positions, stops, side="left")
    fp_before = starts - tp_before
    fp_tied = (stops - starts) - (tp_end - tp_before)
    # 2 x (defect, defect-free) pairs the map orders wrongly; ties count half. Exact integers.
    twice_wrong = 2 * int(fp_before.sum()) + int(fp_tied.sum())
    twice_pairs = 2 * n_pos * n_neg
    out = {"pixel_auroc": (twice_pairs - twice_wrong) / twice_pairs}
    # each defect pixel adds 1/P to the recall at its group's end, at that group's precision
    out["pixel_ap"] = float(np.sum(tp_end / stops)) / n_pos
    # PRO curve: between groups holding defect pixels it is flat, so its corners are the
    # start and end points of those groups
    first = tp_before == np.arange(n_pos)  # the first defect pixel of each group
    # extended precision (80-bit on x86) so that a completed region adds exactly 1 after rounding
    cumulative_weight = np.concatenate(([0.0], np.cumsum(weights[region], dtype=np.longdouble)))
    fpr = np.stack((fp_before[first], stops[first] - tp_end[first]), axis=1).ravel() / n_neg
    pro = (np.stack((cumulative_weight[tp_before[first]], cumulative_weight[tp_end[first]]),
                    axis=1).ravel() / n_regions).astype(np.float64)
    out["au_pro"] = _area(np.append(fpr, 1.0), np.append(pro, pro[-1]), fpr_limit)
    if f1_max:
        out["pixel_f1_max"] = float(np.max(2.0 * tp_end / (stops + n_pos)))
    return out


def _area(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """AU-PRO from the curve's points: (0,0), the given points, (1,1); clipped to [0,1]."""
    x = np.concatenate(([0.0], np.clip(fpr, 0.0, 1.0), [1.0]))
    y = np.concatenate(([0.0], np.clip(pro, 0.0, 1.0), [1.0]))
    return trapezoid_area(x, y, fpr_limit) / fpr_limit


# ----------------------------------------------------------------------------- entry points
def _undefined_all(reason: str, f1_max: bool, task: str | None) -> dict[str, float]:
    names = {"pixel_auroc": "pixel AUROC", "pixel_ap": "pixel AP", "au_pro": "AU-PRO"}
    if f1_max:
        names["pixel_f1_max"] = "pixel F1-max"
    return {key: undefined(name, reason, task) for key, name in names.items()}


def ranked_pixel_metrics(map_chunks: Sequence[np.ndarray | torch.Tensor],
                         mask_chunks: Sequence[np.ndarray | torch.Tensor], *,
                         fpr_limit: float = 0.3, f1_max: bool = False,
                         task: str | None = None) -> dict[str, float]:
    """Pixel metrics of already-checked chunks: maps (n,H,W) and bool masks (n,H,W).

    numpy chunks are ranked with numpy, torch chunks with torch on their device.
    """
    limit = check_fpr_limit(fpr_limit)
    if not map_chunks:
        return _undefined_all("no pixels", f1_max, task)
    on_torch = isinstance(map_chunks[0], torch.Tensor)
    masks_np = [g.cpu().numpy() if isinstance(g, torch.Tensor) else g for g in mask_chunks]
    n_pos = sum(int(np.count_nonzero(g)) for g in masks_np)
    n_total = sum(g.size for g in masks_np)
    reason = undefined_reason(n_pos, n_total, "pixels")
    if reason is not None:
        return _undefined_all(reason, f1_max, task)
    region_chunks, weights, n_regions = label_region_chunks(masks_np)
    if on_torch:
        device = map_chunks[0].device
        regions_t = [torch.from_numpy(r).to(device) for r in region_chunks]
        ranking = _rank_torch(map_chunks, regions_t)
    else:
        ranking = _rank_numpy(map_chunks, region_chunks)
    return _metrics_from_ranking(*ranking, weights, n_regions, limit, f1_max)


def pixel_metrics(maps: Any, masks: Any, *, fpr_limit: float = 0.3, f1_max: bool = False,
                  task: str | None = None,
                  device: str | torch.device | None = None) -> dict[str, float]:
    """Pixel AUROC, pixel AP and AU-PRO (and pixel F1-max) of one task from one ranking.

    maps (N,1,H,W) or (N,H,W), numpy or torch; masks of the same shape, binary. ``device``:
    None ranks where the maps are (numpy on the CPU, CUDA tensors on their GPU); "cpu" or
    "cuda[:i]" moves them there first (torch on a GPU, numpy on the CPU). Returns
    ``{"pixel_auroc", "pixel_ap", "au_pro"[, "pixel_f1_max"]}``; NaN with a warning naming the
    task when it has no defect pixel or no defect-free pixel.
    """
    target = torch.device(device) if device is not None else (
        maps.device if isinstance(maps, torch.Tensor) else torch.device("cpu"))
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {target}: CUDA is not available here; use device='cpu'")
    if target.type == "cpu":
        m, g = maps_and_masks(maps, masks, task)
    else:
        m_t = torch.as_tensor(maps).to(target)
        m, g = maps_and_masks_torch(m_t, torch.as_tensor(masks), task)
    return ranked_pixel_metrics([m], [g], fpr_limit=fpr_limit, f1_max=f1_max, task=task)


__all__ = ["PIXEL_KEYS", "label_region_chunks", "pixel_metrics", "ranked_pixel_metrics"]

