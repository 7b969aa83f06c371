"""BTAD as published: ``ok`` and ``ko`` folders, masks named like their images.

BTAD (beanTech Anomaly Detection; Mishra et al., "VT-ADL: A Vision Transformer Network for
Image Anomaly Detection and Localization", ISIE 2021) ships three products, ``01``, ``02`` and
``03``::

    <root>/<product>/train/ok/<name>.<ext>
    <root>/<product>/test/ok/<name>.<ext>
    <root>/<product>/test/ko/<name>.<ext>
    <root>/<product>/ground_truth/ko/<name>.<mask ext>

File formats differ between products (BMP and PNG), and a mask's suffix may differ from its
image's (product 01: ``test/ko/0000.bmp`` with ``ground_truth/ko/0000.png``), so a mask is
the one file of ``ground_truth/ko`` whose stem is the image's, whatever its image suffix. The
checks are the MVTec loader's: missing or ambiguous masks, orphan masks and a mask folder for
good (``ok``) images are errors.
"""

from __future__ import annotations

from pathlib import Path

from cl_bench.data.layout import (
    IMAGE_SUFFIXES,
    SPLITS,
    Sample,
    _visible,
    check_listed,
    check_mask_folders,
    check_root,
    list_images,
    training_samples,
)
from cl_bench.errors import DataError

OK, KO = "ok", "ko"
#: the three BTAD products
CATEGORIES = ("01", "02", "03")
LAYOUT_HINT = (
    "expected BTAD layout: <root>/<product>/train/ok/*, <root>/<product>/test/{ok,ko}/*, "
    "<root>/<product>/ground_truth/ko/<image stem>.<png|bmp>"
)


class BTADLayout:
    """BTAD read from its published layout."""

    name = "btad"

    def looks_like(self, root: Path) -> bool:
        return any(
            (p / "train" / OK).is_dir() or (p / "test" / KO).is_dir()
            for p in _visible(root) if p.is_dir()
        )

    def list_categories(self, root: Path) -> list[str]:
        path = check_root(root)
        found = [p.name for p in _visible(path)
                 if p.is_dir() and any((p / s).is_dir() for s in SPLITS)]
        if not found:
            listed = ", ".join(p.name for p in _visible(path)[:10]) or "nothing"
            raise DataError(f"no product folders under {path} (found: {listed}); {LAYOUT_HINT}")
        return found

    def check_category(self, root: Path, category: str) -> None:
        check_listed(category, self.list_categories(root),
                     f"product {category!r} not found under {root}; products found")

    def scan_split(self, root: Path, category: str, split: str) -> list[Sample]:
        """Train: ``train/ok`` sorted. Test: ``test/ok`` then ``test/ko``, each sorted by name."""
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.check_category(root, category)
        folder = Path(root) / category
        if split == "train":
            return training_samples(folder / "train" / OK, category, "product", LAYOUT_HINT)
        test = folder / "test"
        subfolders = [p for p in _visible(test)] if test.is_dir() else []
        strange = [p for p in subfolders if p.name not in (OK, KO) or not p.is_dir()]
        if strange:
            raise DataError(
                f"{strange[0]}: BTAD test folders are test/{OK} (good) and test/{KO} "
                f"(defective); move or remove it. {LAYOUT_HINT}"
            )
        if not subfolders:
            raise DataError(f"product {category!r} has no test/{OK} or test/{KO} folder; "
                            f"{LAYOUT_HINT}")
        samples: list[Sample] = []
        if (test / OK).is_dir():
            samples += [Sample(p, 0, "good", None) for p in _nonempty(test / OK)]
        if (test / KO).is_dir():
            masks = _masks_by_stem(folder / "ground_truth" / KO)
            missing = []
            for image in _nonempty(test / KO):
                found = masks.get(image.stem, [])
                if len(found) > 1:
                    raise DataError(
                        f"defective image {image} has {len(found)} masks "
                        f"({', '.join(p.name for p in found)}); keep one"
                    )
                if not found:
                    missing.append(image)
                    continue
                samples.append(Sample(image, 1, KO, found[0]))
            if missing:
                more = f" (and {len(missing) - 1} more in test/{KO})" if len(missing) > 1 else ""
                raise DataError(
                    f"defective image {missing[0]} has no mask: expected "
                    f"{folder / 'ground_truth' / KO / missing[0].stem}.png (or .bmp){more}. "
                    f"Every defective BTAD image needs ground_truth/ko/<its stem>.<png|bmp>; add "
                    f"the mask or remove the image."
                )
        check_mask_folders(folder / "ground_truth", samples, OK,
                           lambda m: f"{m.parents[2] / 'test' / m.parent.name / m.stem}.<ext>")
        return samples


def _nonempty(folder: Path) -> list[Path]:
    images = list_images(folder)
    if not images:
        raise DataError(f"folder {folder} is empty; add its images or remove the folder")
    return images


def _masks_by_stem(folder: Path) -> dict[str, list[Path]]:
    masks: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in list_images(folder):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                masks.setdefault(path.stem, []).append(path)
    return masks
