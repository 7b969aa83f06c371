"""Helpers that write tiny MVTec-layout datasets (imported by the data tests and conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    """Save ``array`` (uint8, (H, W) or (H, W, C)) with Pillow, creating the folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def random_image(rng: np.random.Generator, height: int, width: int, channels: int = 3):
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def box_mask(height: int, width: int, value: int = 255) -> np.ndarray:
    """A mask whose foreground is the top-left quarter."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: height // 2, : width // 2] = value
    return mask


def make_category(
    root: Path,
    name: str = "widget",
    n_train: int = 3,
    n_good: int = 2,
    defects: dict[str, int] | None = None,
    size: tuple[int, int] = (24, 24),
    channels: int = 3,
    suffix: str = ".png",
    mask_value: int = 255,
    seed: int = 0,
) -> Path:
    """Write ``root/name`` in the MVTec AD layout with random images and box masks."""
    rng = np.random.default_rng(seed)
    height, width = size
    folder = root / name
    defects = {"scratch": 2} if defects is None else defects
    for i in range(n_train):
        write_image(
            folder / "train" / "good" / f"{i:03d}{suffix}", random_image(rng, *size, channels)
        )
    for i in range(n_good):
        write_image(
            folder / "test" / "good" / f"{i:03d}{suffix}", random_image(rng, *size, channels)
        )
    for defect, count in defects.items():
        (folder / "test" / defect).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_image(
                folder / "test" / defect / f"{i:03d}{suffix}", random_image(rng, *size, channels)
            )
            write_image(
                folder / "ground_truth" / defect / f"{i:03d}_mask.png",
                box_mask(height, width, mask_value),
            )
    return folder
