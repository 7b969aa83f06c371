"""Decoding, resizing and normalising images and masks.

Images become ``uint8`` arrays (S, S, 3): single-channel, palette and alpha images are converted
to three channels, 16-bit images are scaled to 8 bits, and every image is resized directly to
S x S (bilinear, antialiased), as the MVTec AD literature does (non-square images are stretched).
Masks are binarised on their own values first (any pixel != 0 is defect, whatever the bit depth:
1, 8 or 16 bits), then resized with the nearest neighbour, so a foreground value of 254 (MVTec
3D-AD), 1, or 255 in a 16-bit file counts like 255. Normalisation uses the ImageNet statistics:
``x_c = (v_c / 255 - mean_c) / std_c``.
"""

from __future__ import annotations

import contextlib
import errno
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile

from cl_bench.errors import DataError

#: ImageNet channel means and standard deviations (RGB), used by every pretrained teacher
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_RESAMPLE_IMAGE = Image.Resampling.BILINEAR
_RESAMPLE_MASK = Image.Resampling.NEAREST


@dataclass(frozen=True)
class Decoded:
    """A resized ``uint8`` array and the size (width, height) and mode of the file it came from."""

    array: np.ndarray
    original_size: tuple[int, int]
    mode: str
    #: masks: whether the file marks any pixel (> 0) at its own resolution; None for images
    foreground: bool | None = None

    def __post_init__(self) -> None:
        self.array.flags.writeable = False  # shared through the cache: nobody may modify it

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


@contextlib.contextmanager
def strict_truncation() -> Iterator[None]:
    """Make Pillow raise on truncated files even if another library switched that off."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


#: what Pillow raises for a file it cannot open, verify or decode
READ_ERRORS = (OSError, SyntaxError, ValueError, struct.error, Image.DecompressionBombError)


def open_error(path: Path, exc: BaseException) -> DataError:
    """The ``DataError`` for file ``path`` that could not be opened or decoded (``exc``)."""
    if isinstance(exc, FileNotFoundError):
        return DataError(
            f"{path}: file not found; it was listed when the dataset was built, so it was "
            f"removed since. Restore it or rebuild the dataset."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return DataError(
            f"{path}: a symbolic link that loops (too many levels of symbolic links); point it "
            f"at the real file or remove it"
        )
    return DataError(
        f"{path}: unreadable or truncated image file ({type(exc).__name__}: {exc}). "
        f"Re-download or re-extract the dataset, or delete this file (and its mask)."
    )


def open_image(path: Path) -> Image.Image:
    """Open and fully decode ``path``; a missing, foreign or truncated file raises ``DataError``."""
    try:
        with strict_truncation(), Image.open(path) as handle:
            handle.load()
            image = handle.convert("RGBA") if handle.mode in ("P", "PA") else handle.copy()
    except READ_ERRORS as exc:
        raise open_error(path, exc) from None
    return image


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _to_uint8(image: Image.Image, path: Path) -> np.ndarray:
    """Pixel array of ``image`` as ``uint8``, (H, W) or (H, W, C); 16-bit values scaled by 1/257."""
    if image.mode in _SIXTEEN_BIT:
        return (np.asarray(image).astype(np.uint32) // 257).astype(np.uint8)
    if image.mode in ("I", "F"):
        raise DataError(
            f"{path}: Pillow mode {image.mode!r} (32-bit integer or float pixels) is not "
            f"supported; convert the file to an 8-bit PNG"
        )
    return np.asarray(image)


def decode_image(path: Path, size: int) -> Decoded:
    """``path`` decoded, converted to RGB and resized to (size, size, 3) ``uint8``."""
    image = open_image(path)
    mode, original_size = image.mode, image.size
    if image.mode in (*_SIXTEEN_BIT, "I", "F"):
        image = Image.fromarray(_to_uint8(image, path))
    elif image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), _RESAMPLE_IMAGE)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return Decoded(np.ascontiguousarray(array), original_size, mode)


def decode_mask(path: Path, size: int) -> Decoded:
    """``path`` decoded as a ground-truth mask: (size, size) ``uint8`` in {0, 1}, foreground != 0.

    The mask is binarised on its own values, before any scaling, whatever its bit depth: a
    1-bit, 8-bit or 16-bit pixel that is not 0 is defect (a 16-bit mask whose foreground is
    255 or 1 is as defective as one whose foreground is 65535). The binary mask is then resized
    with the nearest neighbour, which picks pixels, so the order of the two steps does not
    change an 8-bit mask's result.
    """
    image = open_image(path)
    mode, original_size = image.mode, image.size
    if image.mode in ("LA", "La"):  # drop the alpha channel: it is not the mask
        image = image.convert("L")
    elif image.mode not in ("1", "L", "I", "F", *_SIXTEEN_BIT):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3:  # colour masks: foreground where any colour channel is set
        array = array.max(axis=2)
    binary = (array != 0).astype(np.uint8)
    foreground = bool(binary.any())
    if binary.shape != (size, size):
        binary = np.asarray(Image.fromarray(binary).resize((size, size), _RESAMPLE_MASK))
    return Decoded(np.ascontiguousarray(binary), original_size, mode, foreground)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) ``uint8`` -> (3, H, W) ``float32``, ImageNet-normalised."""
    image = torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32)).div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return image.sub_(mean).div_(std)


def mask_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W) ``uint8`` in {0, 1} -> (1, H, W) ``float32``."""
    return torch.from_numpy(array.astype(np.float32)).unsqueeze(0)


def denormalize(image: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Undo the ImageNet normalisation: ``v = x * std + mean``, clipped to [0, 1].

    Accepts (3, H, W) or (B, 3, H, W), torch or numpy; returns the same kind.
    """
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"denormalize expects (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    shape = (3, 1, 1)
    if isinstance(image, np.ndarray):
        mean = np.asarray(IMAGENET_MEAN, dtype=image.dtype).reshape(shape)
        std = np.asarray(IMAGENET_STD, dtype=image.dtype).reshape(shape)
        return np.clip(image * std + mean, 0.0, 1.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(shape)
    return (image * std + mean).clamp(0.0, 1.0)
