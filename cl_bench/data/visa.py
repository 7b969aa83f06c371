"""VisA as published: images and masks in per-category folders, the split in ``split_csv/1cls.csv``.

VisA (Zou et al., "SPot-the-Difference Self-Supervised Pre-training for Anomaly Detection and
Segmentation", ECCV 2022; data: github.com/amazon-science/spot-diff) ships::

    <root>/<category>/Data/Images/Normal/<name>.JPG
    <root>/<category>/Data/Images/Anomaly/<name>.JPG
    <root>/<category>/Data/Masks/Anomaly/<name>.png
    <root>/split_csv/1cls.csv        columns: object,split,label,image,mask

The 1cls split (the one-class protocol the continual-AD papers use: train on normal images, test
on normal and anomalous ones) is read as is: ``split`` is ``train`` or ``test``, ``label`` is
``normal`` or ``anomaly``, ``image`` and ``mask`` are paths relative to ``<root>`` (``mask``
empty for normal images). The split file is the authority: files it does not list are not
used, as the protocol prescribes. VisA masks mark defects with small non-zero values (the
defect's class index), not 255; :func:`cl_bench.data.imaging.decode_mask` binarises them (> 0).
Defective images have one defect type here, ``anomaly`` (the split file names none).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from cl_bench.data.layout import GOOD, SPLITS, Sample, check_listed, settle
from cl_bench.errors import DataError

SPLIT_FILE = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
NORMAL, ANOMALY = "normal", "anomaly"
#: the 12 VisA categories (Zou et al., 2022, Table 1)
CATEGORIES = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
    "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)  # fmt: skip
SOURCE_HINT = (
    "the VisA archive ships it (split_csv/1cls.csv beside the category folders; also in the "
    "GitHub repository amazon-science/spot-diff)"
)


@dataclass(frozen=True)
class Row:
    """One row of the split file, with its line number (the header is line 1)."""

    line: int
    category: str
    split: str
    label: str
    image: str
    mask: str


def split_file(root: Path) -> Path:
    """``<root>/split_csv/1cls.csv``; ``DataError`` naming the file and the fix when missing."""
    path = root / SPLIT_FILE
    if path.is_file():
        return path
    hint = ""
    if (root / "Data" / "Images").is_dir():
        hint = (f" {root} looks like one VisA category folder: pass its parent {root.parent} "
                f"as the root.")
    raise DataError(
        f"VisA split file {path} not found; {SOURCE_HINT}. Put it there (cl-bench uses the 1cls "
        f"split, as the continual-AD papers do).{hint}"
    )


def read_split(root: Path) -> list[Row]:
    """The rows of ``<root>/split_csv/1cls.csv`` after the checks that need no image file."""
    path = split_file(root)
    stat = path.stat()
    return list(_read_split(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _read_split(path_text: str, mtime_ns: int, size: int) -> tuple[Row, ...]:
    """Parsed once per file version (every category and split reads the same file)."""
    path = Path(path_text)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [cell.strip() for cell in next(reader, [])]
            lines = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"{path}: cannot be read as CSV ({exc}); re-extract the VisA archive"
        ) from None
    if tuple(header) != COLUMNS:
        raise DataError(
            f"{path}: header is {','.join(header) or '(empty file)'}; expected "
            f"{','.join(COLUMNS)} (the 1cls split of VisA; {SOURCE_HINT})"
        )
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for index, cells in enumerate(lines):
        line = index + 2
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(COLUMNS):
            raise DataError(
                f"{path}, line {line}: {len(cells)} fields, expected {len(COLUMNS)} "
                f"({','.join(COLUMNS)}); fix or delete the row"
            )
        row = Row(line, *(cell.strip() for cell in cells))
        _check_row(path, row)
        if row.image in seen:
            raise DataError(
                f"{path}, line {line}: image {row.image} is listed again (first on line "
                f"{seen[row.image]}); every image belongs to one split once. Delete one row."
            )
        seen[row.image] = line
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows after the header; {SOURCE_HINT}")
    return tuple(rows)


def _check_row(path: Path, row: Row) -> None:
    where = f"{path}, line {row.line}"
    if not row.category:
        raise DataError(f"{where}: column 'object' is empty; name the category")
    if row.split not in SPLITS:
        raise DataError(f"{where}: split {row.split!r} is not one of {', '.join(SPLITS)}")
    if row.label not in (NORMAL, ANOMALY):
        raise DataError(f"{where}: label {row.label!r} is not {NORMAL!r} or {ANOMALY!r}")
    if not row.image:
        raise DataError(f"{where}: column 'image' is empty; give the image's path")
    if row.split == "train" and row.label == ANOMALY:
        raise DataError(
            f"{where}: an anomaly image ({row.image}) in the train split; the 1cls split trains "
            f"on normal images only. Is this a 2cls split file? Use split_csv/1cls.csv."
        )
    if row.label == ANOMALY and not row.mask:
        raise DataError(
            f"{where}: anomaly image {row.image} has no mask (column 'mask' is empty); every "
            f"anomaly image needs <category>/Data/Masks/Anomaly/<name>.png. Add the mask path."
        )
    if row.label == NORMAL and row.mask:
        raise DataError(
            f"{where}: normal image {row.image} has a mask ({row.mask}), but good images have no "
            f"masks (theirs are all zero by definition) and it would be ignored. Clear the "
            f"'mask' cell, or label the row 'anomaly' if the image is defective."
        )


class VisALayout:
    """VisA read from its published layout through the 1cls split file."""

    name = "visa"

    def looks_like(self, root: Path) -> bool:
        if (root / "split_csv").is_dir() or (root / "Data" / "Images").is_dir():
            return True
        return any((p / "Data" / "Images").is_dir() for p in root.iterdir() if p.is_dir())

    def list_categories(self, root: Path) -> list[str]:
        return sorted({row.category for row in read_split(root)})

    def check_category(self, root: Path, category: str) -> None:
        check_listed(category, self.list_categories(root),
                     f"category {category!r} is not in {root / SPLIT_FILE}; categories there")

    def scan_split(self, root: Path, category: str, split: str,
                   problems: list[str] | None = None) -> list[Sample]:
        """Rows of ``category`` and ``split``: train sorted by path; test normal, then anomaly.

        Rows whose image or mask is missing are all collected, as in
        :func:`.layout.scan_split` (raised together, or recorded in ``problems`` and left out).
        """
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.check_category(root, category)
        rows = [r for r in read_split(root) if r.category == category and r.split == split]
        if not rows:
            raise DataError(
                f"category {category!r} has no {split} rows in {root / SPLIT_FILE}; "
                f"{SOURCE_HINT}"
            )
        rows.sort(key=lambda r: (r.label != NORMAL, r.image))
        found: list[str] = []
        bad = _check_files(root, rows, found)
        settle(found, problems, f"{root / SPLIT_FILE} ({category}, {split})")
        return [
            Sample(root / r.image, 0, GOOD, None) if r.label == NORMAL
            else Sample(root / r.image, 1, ANOMALY, root / r.mask)
            for r in rows if r.line not in bad
        ]


def _check_files(root: Path, rows: list[Row], problems: list[str]) -> set[int]:
    """Every image and mask a row names exists; one problem per missing file, in ``problems``.
    Returns the line numbers of the rows concerned."""
    path = root / SPLIT_FILE
    bad: set[int] = set()
    for column in ("image", "mask"):
        for row in rows:
            named = getattr(row, column)
            if not named or (root / named).is_file():
                continue
            bad.add(row.line)
            what = "image" if column == "image" else f"mask of anomaly image {row.image}:"
            problems.append(
                f"{path}, line {row.line}: {what} {root / named} not found. Paths in the split "
                f"file are relative to the root holding split_csv/ ({root}); re-extract the VisA "
                f"archive there, or use the split file of this copy.")
    return bad
