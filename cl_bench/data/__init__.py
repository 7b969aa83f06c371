"""Datasets (MVTec AD/MPDD, VisA, BTAD layouts), synthetic data and the Avalanche task stream.

- :class:`MVTecDataset`: one category and split of any layout; items ``(image, label, mask)``.
- :func:`list_categories`: the task names of a root (its categories) or of several sources.
- :class:`Source`: a dataset root, its layout and name; several make a cross-dataset sequence.
- :func:`detect_format` / :data:`FORMATS`: the layouts read (:mod:`.formats`).
- :func:`synthesize` / :func:`ensure_synthetic`: the embedded synthetic default.
- :func:`build_benchmark`: the Avalanche benchmark, one task per category.
- :func:`resolve_order`: task orders (alphabetical, reversed, random, explicit; :mod:`.orders`).
- :class:`ImageCache` / :func:`default_cache`: decode-and-resize-once image cache.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cl_bench.data.cache import ImageCache, default_cache
    from cl_bench.data.formats import FORMATS, detect_format
    from cl_bench.data.imaging import IMAGENET_MEAN, IMAGENET_STD, denormalize
    from cl_bench.data.layout import DataWarning
    from cl_bench.data.mvtec import MVTecDataset
    from cl_bench.data.orders import resolve_order
    from cl_bench.data.sources import Source, Sources, list_categories
    from cl_bench.data.stream import TaskBenchmark, build_benchmark
    from cl_bench.data.synthetic import CATEGORY_NAMES, DEFECT_TYPES, ensure_synthetic, synthesize

#: where each public name lives; imported on first use (PEP 562), so that a light module such
#: as :mod:`cl_bench.data.orders` does not pull in the synthetic data generator and its imports
_HOMES = {
    "CATEGORY_NAMES": "cl_bench.data.synthetic",
    "DEFECT_TYPES": "cl_bench.data.synthetic",
    "DataWarning": "cl_bench.data.layout",
    "FORMATS": "cl_bench.data.formats",
    "IMAGENET_MEAN": "cl_bench.data.imaging",
    "IMAGENET_STD": "cl_bench.data.imaging",
    "ImageCache": "cl_bench.data.cache",
    "MVTecDataset": "cl_bench.data.mvtec",
    "Source": "cl_bench.data.sources",
    "Sources": "cl_bench.data.sources",
    "TaskBenchmark": "cl_bench.data.stream",
    "build_benchmark": "cl_bench.data.stream",
    "default_cache": "cl_bench.data.cache",
    "denormalize": "cl_bench.data.imaging",
    "detect_format": "cl_bench.data.formats",
    "ensure_synthetic": "cl_bench.data.synthetic",
    "list_categories": "cl_bench.data.sources",
    "resolve_order": "cl_bench.data.orders",
    "synthesize": "cl_bench.data.synthetic",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "CATEGORY_NAMES",
    "DEFECT_TYPES",
    "FORMATS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataWarning",
    "ImageCache",
    "MVTecDataset",
    "Source",
    "Sources",
    "TaskBenchmark",
    "build_benchmark",
    "default_cache",
    "denormalize",
    "detect_format",
    "ensure_synthetic",
    "list_categories",
    "resolve_order",
    "synthesize",
]
