"""What ``cl-bench data info`` prints: per-category counts, defect types, image sizes and modes.

Sizes, modes and formats come from the file headers (Pillow opens files lazily), so a summary
of the full MVTec AD reads no pixels; ``check=True`` decodes every image and mask as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cl_bench.data.cache import ImageCache
from cl_bench.data.mvtec import MVTecDataset
from cl_bench.errors import DataError

#: size at which ``check=True`` decodes (small: resizing is not what is being checked)
CHECK_SIZE = 32


@dataclass
class CategorySummary:
    """Counts and file properties of one category."""

    category: str
    n_train: int
    n_test_good: int
    n_test_defective: int
    n_masks: int
    defect_counts: dict[str, int]
    image_sizes: Counter = field(default_factory=Counter)  # (width, height) -> count
    image_modes: Counter = field(default_factory=Counter)  # Pillow mode -> count
    image_formats: Counter = field(default_factory=Counter)  # "PNG", "JPEG", ... -> count


def _header(path: Path) -> tuple[tuple[int, int], str, str]:
    try:
        with Image.open(path) as image:
            return image.size, image.mode, image.format or path.suffix.lstrip(".").upper()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"{path}: unreadable image file ({type(exc).__name__}: {exc}). Re-download or "
            f"re-extract the dataset, or delete this file (and its mask)."
        ) from None


def summarize_category(root: str | Path, category: str, check: bool = False) -> CategorySummary:
    """Summary of ``category``; raises ``DataError`` for the first problem found.

    ``check`` decodes every image and mask (truncated files, mask sizes), reporting all of them.
    """
    no_cache = ImageCache(max_mb=0)
    train = MVTecDataset(root, category, "train", CHECK_SIZE, cache=no_cache)
    test = MVTecDataset(root, category, "test", CHECK_SIZE, cache=no_cache)
    if check:
        problems = []
        for dataset in (train, test):
            try:
                dataset.validate(deep=True)
            except DataError as exc:
                problems.append(str(exc))
        if problems:
            raise DataError("\n".join(problems))
    defects = {d: n for d, n in test.defect_counts().items() if d != "good"}
    summary = CategorySummary(
        category=category,
        n_train=len(train),
        n_test_good=test.defect_counts().get("good", 0),
        n_test_defective=sum(defects.values()),
        n_masks=sum(m is not None for m in test.mask_paths),
        defect_counts=defects,
    )
    for path in [*train.paths, *test.paths]:
        size, mode, kind = _header(path)
        summary.image_sizes[size] += 1
        summary.image_modes[mode] += 1
        summary.image_formats[kind] += 1
    return summary


def _counted(counter: Counter, show=str) -> str:
    """``"a"`` when uniform, else ``"a (n), b (m)"``, most common first."""
    items = counter.most_common()
    if len(items) == 1:
        return show(items[0][0])
    return ", ".join(f"{show(value)} ({count})" for value, count in items)


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def format_table(root: Path, summaries: list[CategorySummary]) -> str:
    """A fixed-width table, one row per category, and a total row."""
    header = (
        "category",
        "train/good",
        "test/good",
        "test/defective",
        "masks",
        "defect types",
        "image size (WxH)",
        "mode",
        "format",
    )
    rows = [header]
    for s in summaries:
        rows.append(
            (
                s.category,
                str(s.n_train),
                str(s.n_test_good),
                str(s.n_test_defective),
                str(s.n_masks),
                ", ".join(f"{d} ({n})" for d, n in s.defect_counts.items()) or "-",
                _counted(s.image_sizes, _wxh),
                _counted(s.image_modes),
                _counted(s.image_formats),
            )
        )
    if len(summaries) > 1:
        rows.append(
            (
                "total",
                str(sum(s.n_train for s in summaries)),
                str(sum(s.n_test_good for s in summaries)),
                str(sum(s.n_test_defective for s in summaries)),
                str(sum(s.n_masks for s in summaries)),
                "",
                "",
                "",
                "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    title = f"{root}: {len(summaries)} categor{'y' if len(summaries) == 1 else 'ies'}"
    return "\n".join([title, *lines])
