"""Memory-bank primitives for PatchCore: greedy coreset subsampling and nearest-neighbour search.

Pure torch functions on (N, D) float tensors, on whatever device they live; no model state.

- :func:`greedy_coreset`: the k-center greedy (farthest-point) selection of Roth et al.,
  "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022 (Alg. 1; Sener & Savarese,
  ICLR 2018). From a random first centre, repeatedly add
  ``m* = argmax_{m in M \\ C} min_{c in C} ||psi(m) - psi(c)||_2`` until ``|C| = k``, where
  ``psi`` is an optional Gaussian random projection to a lower dimension (Johnson-Lindenstrauss),
  used only to choose the points: the bank keeps the original features.
- :func:`nearest_neighbor_distances`: ``s(q) = min_{m in M} ||q - m||_2`` and its argmin, exact,
  over chunks of queries with one torch matrix product each. Torch, not faiss: no extra
  dependency and it runs on the detector's device (GPU included); on one CPU thread faiss's
  ``IndexFlatL2`` is somewhat faster at these sizes (docs/detectors.md has the measurement).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: queries per ``torch.cdist`` call: bounds the (chunk, bank) distance matrix in memory
DEFAULT_QUERY_CHUNK = 4096


def projection_dim(n_points: int, n_features: int, eps: float | None) -> int | None:
    """Target dimension of the coreset's random projection, or None for no projection.

    ``johnson_lindenstrauss_min_dim(n_points, eps)`` (scikit-learn); no projection when ``eps``
    is None or that dimension is not below ``n_features`` (a projection to as many or more
    dimensions would only add distortion).
    """
    if eps is None or n_points < 2:
        return None
    # imported here: scikit-learn takes longer to import than torch, and listing detectors
    # (cl-bench list, --help) does not need it
    from sklearn.random_projection import johnson_lindenstrauss_min_dim

    target = int(johnson_lindenstrauss_min_dim(n_points, eps=eps))
    return target if target < n_features else None


def random_projection(features: Tensor, dim: int, generator: torch.Generator | None) -> Tensor:
    """``features @ R`` with ``R`` (D, dim) i.i.d. N(0, 1/dim): a Gaussian Johnson-Lindenstrauss
    projection, drawn on the CPU from ``generator`` (reproducible) and moved to the features'
    device. Written in torch (one matrix product) rather than with scikit-learn's
    ``GaussianRandomProjection`` so the features stay on their device."""
    matrix = torch.randn(features.shape[1], dim, generator=generator) / math.sqrt(dim)
    return features @ matrix.to(device=features.device, dtype=features.dtype)


def greedy_coreset(features: Tensor, size: int, *, projection_eps: float | None = None,
                   start: int | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """Indices (``size``,) of a k-center greedy coreset of ``features`` (N, D), in the order
    chosen; the first is ``start`` (default: uniform random from ``generator``).

    Written by hand: scikit-learn has no k-center greedy; anomalib's ``KCenterGreedy`` is the
    same algorithm but anomalib is not a dependency of cl-bench.
    """
    n = features.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"coreset size {size} must be between 1 and the {n} points")
    points = features.float()
    dim = projection_dim(n, points.shape[1], projection_eps)
    if dim is not None:
        points = random_projection(points, dim, generator)
    if start is None:
        start = int(torch.randint(n, (1,), generator=generator))
    chosen = torch.empty(size, dtype=torch.long, device=points.device)
    chosen[0] = start
    min_dist = torch.linalg.vector_norm(points - points[start], dim=1)
    for i in range(1, size):
        index = torch.argmax(min_dist)
        chosen[i] = index
        min_dist = torch.minimum(min_dist, torch.linalg.vector_norm(points - points[index], dim=1))
    return chosen


def nearest_neighbor_distances(queries: Tensor, bank: Tensor,
                               chunk: int = DEFAULT_QUERY_CHUNK) -> tuple[Tensor, Tensor]:
    """Euclidean distance of each query (Q, D) to its nearest bank row (M, D), and that row's
    index: two (Q,) tensors.

    Per chunk of queries one matrix product, ``||q - m||^2 = ||q||^2 - 2 q.m + ||m||^2``
    (``torch.addmm``; the same expansion ``torch.cdist`` and faiss ``IndexFlatL2`` use for
    more than 25 rows), the minimum over the bank, and the square root of the minima only.
    """
    if bank.shape[0] == 0:
        raise ValueError("the memory bank is empty")
    queries, bank = queries.float(), bank.float()
    bank_t = bank.t().contiguous()
    bank_sq = bank.square().sum(dim=1)
    distances, indices = [], []
    for begin in range(0, queries.shape[0], chunk):
        block = queries[begin:begin + chunk]
        squared = torch.addmm(bank_sq, block, bank_t, beta=1.0, alpha=-2.0)  # ||m||^2 - 2 q.m
        best = squared.min(dim=1)
        distances.append((best.values + block.square().sum(dim=1)).clamp_min(0).sqrt())
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)
