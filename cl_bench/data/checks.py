"""The file checks a run makes before its run folder exists: every image and mask can be read.

What is checked, per file, and why it is cheap enough for the full MVTec AD (docs/running.md):

- images: the header is read (format, size), then a PNG's chunks are read with their CRC-32
  checksums (Pillow's ``verify``: a truncated or damaged file fails, without inflating the
  pixels), a JPEG is decoded at 1/8 scale (Pillow's ``draft``: the whole stream is read, so a
  truncated file fails) and any other format (BMP, TIFF) is decoded;
- masks: decoded in full, as the runner does anyway to warn of empty masks, and their size
  compared with their image's (a mask must have its image's size).

Every problem is collected (one line each), so a run names them all at once; a zero-byte,
foreign or truncated file, a mask of the wrong size and a file that vanished are problems.
``cl-bench data info --check`` goes further and decodes every image in full.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from cl_bench.data.imaging import READ_ERRORS, open_error, strict_truncation
from cl_bench.data.mvtec import MVTecDataset, mask_size_problem
from cl_bench.errors import DataError

#: the scale a JPEG is decoded at for the check: enough to read the whole stream
_DRAFT_SIZE = (64, 64)


def read_header_and_stream(path: Path) -> tuple[int, int]:
    """The (width, height) of image ``path`` once its stream has been read through (see the
    module docstring); ``DataError`` naming the file when it cannot be."""
    try:
        with strict_truncation(), Image.open(path) as image:
            size = image.size
            if image.format == "PNG":
                image.verify()
            else:
                if image.format == "JPEG":
                    image.draft("RGB", _DRAFT_SIZE)
                image.load()
    except READ_ERRORS as exc:
        raise open_error(path, exc) from None
    return size


def file_problems(dataset: MVTecDataset) -> list[str]:
    """Every problem of the files of ``dataset`` (module docstring), one message each."""
    problems: list[str] = []
    for index, path in enumerate(dataset.paths):
        try:
            size = read_header_and_stream(path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        mask_path = dataset.mask_paths[index]
        if mask_path is None:
            continue
        try:
            mask = dataset.decoded_mask(mask_path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        problem = mask_size_problem(mask_path, mask.original_size, path, size)
        if problem:
            problems.append(problem)
    return problems


def benchmark_problems(datasets: list[MVTecDataset]) -> list[str]:
    """:func:`file_problems` of every dataset in ``datasets``, in order."""
    return [problem for dataset in datasets for problem in file_problems(dataset)]
