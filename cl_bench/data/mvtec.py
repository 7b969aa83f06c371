"""``MVTecDataset``: one category and split of a dataset folder as a torch Dataset.

The folder may be in any layout of :mod:`.formats` (MVTec AD and MPDD, VisA, BTAD; ``format``
"auto" detects it); the class keeps its name because the MVTec AD layout came first.

Item ``i`` is ``(image, label, mask)`` (the data contract, docs/data.md): ``image`` float32
(3, S, S), ImageNet-normalised; ``label`` 0 good / 1 defective; ``mask`` float32 (1, S, S) in
{0, 1}, zeros for good images. The folder structure is checked when the dataset is built
(cheap: files and masks exist); pixels are decoded lazily, once per process, through an
:class:`ImageCache`. ``validate()`` decodes everything now (truncated files, mask sizes).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cl_bench.data.cache import ImageCache, default_cache
from cl_bench.data.formats import layout_for
from cl_bench.data.imaging import (
    Decoded,
    decode_image,
    decode_mask,
    mask_to_tensor,
    open_error,
    to_tensor,
)
from cl_bench.data.layout import SPLITS, DataWarning
from cl_bench.errors import ConfigError, DataError

#: smallest accepted ``image_size`` (three stride-2 feature levels need at least a few pixels)
MIN_IMAGE_SIZE = 8


class MVTecDataset(Dataset):
    """Images of ``<root>/<category>/<split>`` resized to ``image_size`` x ``image_size``.

    ``cache=None`` uses the process-wide :func:`default_cache` (``$CL_BENCH_IMAGE_CACHE_MB``,
    2 GB by default), so all datasets of a process share one budget; pass
    ``ImageCache(max_mb=0)`` to decode on every access.
    """

    def __init__(
        self,
        root: str | Path,
        category: str,
        split: str = "train",
        image_size: int = 256,
        cache: ImageCache | None = None,
        format: str = "auto",
        task: str | None = None,
        problems: list[str] | None = None,
    ):
        if split not in SPLITS:
            raise ConfigError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int | np.integer)
            or (image_size < MIN_IMAGE_SIZE)
        ):
            raise ConfigError(f"image_size={image_size!r}: give an integer >= {MIN_IMAGE_SIZE}")
        self.root = Path(root).expanduser()
        self.category = category
        self.task = task or category  # the name in records (``visa/candle`` across datasets)
        self.split = split
        self.image_size = int(image_size)
        self.cache = cache if cache is not None else default_cache()
        self.layout = layout_for(self.root, format)
        self.format = self.layout.name
        # problems None: the first scan raises them all; a list: they are recorded there and
        # the files concerned left out (``cl-bench data info --check``, the runner's checks)
        samples = self.layout.scan_split(self.root, category, split, problems)
        self.paths: list[Path] = [s.path for s in samples]
        self.labels: list[int] = [s.label for s in samples]
        self.defect_types: list[str] = [s.defect_type for s in samples]
        self.mask_paths: list[Path | None] = [s.mask_path for s in samples]
        #: empty masks already said by whoever asked :meth:`empty_masks` (the runner prints
        #: them once and records them in the manifest), so decoding them does not warn again
        self.said_empty: set[Path] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"MVTecDataset(root={str(self.root)!r}, category={self.category!r}, "
            f"split={self.split!r}, image_size={self.image_size}, format={self.format!r}, "
            f"n={len(self)})"
        )

    def _cached(self, path: Path, kind: str) -> Decoded:
        try:
            stat = path.stat()
        except OSError as exc:
            raise open_error(path, exc) from None
        key = (str(path), kind, self.image_size, stat.st_mtime_ns, stat.st_size)
        decode = decode_image if kind == "image" else decode_mask
        return self.cache.get_or_load(key, lambda: decode(path, self.image_size))

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` as ``uint8`` arrays: image (S, S, 3) and mask (S, S) in {0, 1}.

        Raises ``DataError`` when a file is unreadable or a mask's size differs from its image's.
        """
        path = self.paths[index]
        image = self._cached(path, "image")
        mask_path = self.mask_paths[index]
        if mask_path is None:
            mask = np.zeros((self.image_size, self.image_size), dtype=np.uint8)
        else:
            decoded = self.decoded_mask(mask_path)
            problem = mask_size_problem(mask_path, decoded.original_size, path,
                                        image.original_size)
            if problem:
                raise DataError(problem)
            mask = decoded.array
            if (self.labels[index] == 1 and decoded.foreground is False
                    and mask_path not in self.said_empty):
                warnings.warn(empty_mask_message(mask_path, path), DataWarning, stacklevel=2)
        return image.array, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image, mask = self.arrays(index)
        return to_tensor(image), self.labels[index], mask_to_tensor(mask)

    def decoded_mask(self, mask_path: Path) -> Decoded:
        """The decoded mask file ``mask_path`` (cached)."""
        return self._cached(mask_path, "mask")

    def empty_masks(self) -> list[Path]:
        """Masks of defective images that mark no pixel (decodes every mask now).

        The caller says them (console, manifest): items of these masks no longer raise a
        ``DataWarning``, so each is said once, in the caller's format."""
        empty = []
        for index, mask_path in enumerate(self.mask_paths):
            if mask_path is None or self.labels[index] != 1:
                continue
            if self._cached(mask_path, "mask").foreground is False:
                empty.append(mask_path)
        self.said_empty.update(empty)
        return empty

    def decode_problems(self) -> list[str]:
        """Decode every image and mask now; one message per unreadable or truncated file and
        per mask whose size differs from its image's (which construction cannot see)."""
        problems: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # empty masks: said by the callers
            for index in range(len(self)):
                try:
                    self.arrays(index)
                except DataError as exc:
                    problems.append(str(exc))
        return problems

    def validate(self, deep: bool = True) -> None:
        """Decode every image and mask now (``deep``); raise one ``DataError`` listing all problems.

        Catches truncated or unreadable files and masks whose size differs from their image's,
        which the cheap checks at construction cannot see. ``deep=False`` does nothing more
        than construction did.
        """
        if not deep:
            return
        problems = self.decode_problems()
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DataError(
                f"{len(problems)} problem(s) in {self.root / self.category} ({self.split}):"
                f"\n  {shown}{more}"
            )

    def defect_counts(self) -> dict[str, int]:
        """Number of images per defect type ("good" included), in dataset order."""
        counts: dict[str, int] = {}
        for defect in self.defect_types:
            counts[defect] = counts.get(defect, 0) + 1
        return counts


def empty_mask_message(mask_path: Path, image_path: Path) -> str:
    return (
        f"{mask_path}: the mask of defective image {image_path} marks no defect pixel; the "
        f"image is kept as published (label 1, empty mask): it counts in the image metrics, "
        f"and only as defect-free pixels in the pixel metrics. Fix the mask if it is wrong."
    )


def mask_size_problem(mask_path: Path, mask_size: tuple[int, int], image_path: Path,
                      image_size: tuple[int, int]) -> str | None:
    """The problem of a mask whose (width, height) differs from its image's, or None."""
    if mask_size == image_size:
        return None
    return (f"mask {mask_path} is {_wxh(mask_size)} but its image {image_path} is "
            f"{_wxh(image_size)}; masks must have their image's size. Replace the mask with the "
            f"right one.")


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
