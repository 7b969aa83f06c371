"""Datasets in the MVTec AD layout, synthetic MVTec-like data and the Avalanche task stream.

- :class:`MVTecDataset`: one category and split; items ``(image, label, mask)`` (DESIGN.md).
- :func:`list_categories`: the category folders under a root.
- :func:`synthesize` / :func:`ensure_synthetic`: the embedded synthetic default.
- :func:`build_benchmark` / :func:`resolve_order`: the Avalanche benchmark, one task per category.
- :class:`ImageCache` / :func:`default_cache`: decode-and-resize-once image cache.
"""

from cl_bench.data.cache import ImageCache, default_cache
from cl_bench.data.imaging import IMAGENET_MEAN, IMAGENET_STD, denormalize
from cl_bench.data.layout import list_categories
from cl_bench.data.mvtec import MVTecDataset
from cl_bench.data.stream import TaskBenchmark, build_benchmark, resolve_order
from cl_bench.data.synthetic import CATEGORY_NAMES, DEFECT_TYPES, ensure_synthetic, synthesize

__all__ = [
    "CATEGORY_NAMES",
    "DEFECT_TYPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageCache",
    "MVTecDataset",
    "TaskBenchmark",
    "build_benchmark",
    "default_cache",
    "denormalize",
    "ensure_synthetic",
    "list_categories",
    "resolve_order",
    "synthesize",
]
