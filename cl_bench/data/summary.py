"""What ``cl-bench data info`` prints: per-category counts, defect types, image sizes and modes.

One table for every layout (:mod:`.formats`): "good" counts VisA's normal and BTAD's ``ok``
images, "defective" VisA's anomaly and BTAD's ``ko`` images.

Sizes, modes and formats come from the file headers (Pillow opens files lazily), so a summary
of the full MVTec AD reads no pixels; ``check=True`` decodes every image and mask as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cl_bench.data.cache import ImageCache
from cl_bench.data.formats import AUTO
from cl_bench.data.layout import problems_error
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
    empty_masks: list[Path] = field(default_factory=list)  # masks of defective images, all zero


def _header(path: Path) -> tuple[tuple[int, int], str, str]:
    try:
        with Image.open(path) as image:
            return image.size, image.mode, image.format or path.suffix.lstrip(".").upper()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"{path}: unreadable image file ({type(exc).__name__}: {exc}). Re-download or "
            f"re-extract the dataset, or delete this file (and its mask)."
        ) from None


def summarize_category(
    root: str | Path, category: str, check: bool = False, format: str = AUTO
) -> CategorySummary:
    """Summary of ``category`` of ``root`` in layout ``format``; DataError for the first problem.

    ``check`` decodes every image and mask (truncated files, mask sizes) and raises one
    ``DataError`` naming every problem of the category (stray files, missing or orphan masks,
    unreadable files, mask sizes), and lists the masks of defective images that mark no pixel
    (a warning, not an error).
    """
    cache = ImageCache(max_mb=64)  # masks are decoded twice with check (validate, empty_masks)
    problems: list[str] | None = [] if check else None  # check: every problem, not the first
    train = MVTecDataset(root, category, "train", CHECK_SIZE, cache=cache, format=format,
                         problems=problems)
    test = MVTecDataset(root, category, "test", CHECK_SIZE, cache=cache, format=format,
                        problems=problems)
    empty: list[Path] = []
    if check:
        for dataset in (train, test):
            problems += dataset.decode_problems()
        if problems:
            raise problems_error(problems, f"category {category!r}", limit=None)
        empty = test.empty_masks()
    defects = {d: n for d, n in test.defect_counts().items() if d != "good"}
    summary = CategorySummary(
        category=category,
        n_train=len(train),
        n_test_good=test.defect_counts().get("good", 0),
        n_test_defective=sum(defects.values()),
        n_masks=sum(m is not None for m in test.mask_paths),
        defect_counts=defects,
        empty_masks=empty,
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


def format_table(root: Path, summaries: list[CategorySummary], layout: str = "") -> str:
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
    if layout:
        title += f" ({layout} layout)"
    return "\n".join([title, *lines])
