"""Datasets (MVTec AD/MPDD, VisA, BTAD layouts), synthetic data and the Avalanche task stream.

- :class:`MVTecDataset`: one category and split of any layout; items ``(image, label, mask)``.
- :func:`list_categories`: the task names of a root (its categories) or of several sources.
- :class:`Source`: a dataset root, its layout and name; several make a cross-dataset sequence.
- :func:`detect_format` / :data:`FORMATS`: the layouts read (:mod:`.formats`).
- :func:`synthesize` / :func:`ensure_synthetic`: the embedded synthetic default.
- :func:`build_benchmark` / :func:`resolve_order`: the Avalanche benchmark, one task per category.
- :class:`ImageCache` / :func:`default_cache`: decode-and-resize-once image cache.
"""

from cl_bench.data.cache import ImageCache, default_cache
from cl_bench.data.formats import FORMATS, detect_format
from cl_bench.data.imaging import IMAGENET_MEAN, IMAGENET_STD, denormalize
from cl_bench.data.layout import DataWarning
from cl_bench.data.mvtec import MVTecDataset
from cl_bench.data.sources import Source, Sources, list_categories
from cl_bench.data.stream import TaskBenchmark, build_benchmark, resolve_order
from cl_bench.data.synthetic import CATEGORY_NAMES, DEFECT_TYPES, ensure_synthetic, synthesize

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
