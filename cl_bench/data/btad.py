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
    SPLITS,
    Sample,
    _visible,
    check_listed,
    check_mask_folders,
    check_no_empty_folders,
    check_root,
    list_images,
    settle,
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
        check_no_empty_folders(path, "product")
        return found

    def check_category(self, root: Path, category: str) -> None:
        check_listed(category, self.list_categories(root),
                     f"product {category!r} not found under {root}; products found")

    def scan_split(self, root: Path, category: str, split: str,
                   problems: list[str] | None = None) -> list[Sample]:
        """Train: ``train/ok`` sorted. Test: ``test/ok`` then ``test/ko``, each sorted by name.

        Problems of single files are all collected, as in :func:`.layout.scan_split`."""
        if split not in SPLITS:
            raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.check_category(root, category)
        folder = Path(root) / category
        found: list[str] = []
        if split == "train":
            samples = training_samples(folder / "train" / OK, category, "product", LAYOUT_HINT,
                                       found)
            settle(found, problems, f"{folder} (train)")
            return samples
        test = folder / "test"
        subfolders = [p for p in _visible(test)] if test.is_dir() else []
        for strange in (p for p in subfolders if p.name not in (OK, KO) or not p.is_dir()):
            found.append(f"{strange}: BTAD test folders are test/{OK} (good) and test/{KO} "
                         f"(defective); move or remove it. {LAYOUT_HINT}")
        if not any(p.name in (OK, KO) and p.is_dir() for p in subfolders):
            raise DataError(f"product {category!r} has no test/{OK} or test/{KO} folder; "
                            f"{LAYOUT_HINT}")
        samples: list[Sample] = []
        masks: dict[str, list[Path]] = {}
        if (test / OK).is_dir():
            samples += [Sample(p, 0, "good", None) for p in _nonempty(test / OK, found)]
        if (test / KO).is_dir():
            masks = _masks_by_stem(folder / "ground_truth" / KO, found)
            images = _nonempty(test / KO, found)
            stems = {p.stem for p in images}
            unmatched = sorted(m.name for stem, ms in masks.items() for m in ms
                               if stem not in stems)
            listed = ", ".join(unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
            hint = (f" ground_truth/{KO} holds masks that match no image ({listed}): if one is "
                    f"this image's, rename it to {{stem}}.<png|bmp>.") if unmatched else ""
            for image in images:
                matches = masks.get(image.stem, [])
                if len(matches) > 1:
                    found.append(f"defective image {image} has {len(matches)} masks "
                                 f"({', '.join(p.name for p in matches)}); keep one")
                elif not matches:
                    found.append(
                        f"defective image {image} has no mask: expected "
                        f"{folder / 'ground_truth' / KO / image.stem}.png (or .bmp). Every "
                        f"defective BTAD image needs ground_truth/ko/<its stem>.<png|bmp>; add "
                        f"the mask or remove the image.{hint.format(stem=image.stem)}")
                else:
                    samples.append(Sample(image, 1, KO, matches[0]))
        claimed = {m for ms in masks.values() if len(ms) > 1 for m in ms}  # named above
        check_mask_folders(folder / "ground_truth", samples, OK,
                           lambda m: f"{m.parents[2] / 'test' / m.parent.name / m.stem}.<ext>",
                           found, claimed)
        settle(found, problems, f"{folder} (test)")
        return samples


def _nonempty(folder: Path, problems: list[str]) -> list[Path]:
    images = list_images(folder, problems)
    if not images:
        problems.append(f"folder {folder} is empty; add its images or remove the folder")
    return images


def _masks_by_stem(folder: Path, problems: list[str]) -> dict[str, list[Path]]:
    masks: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in list_images(folder, problems):
            masks.setdefault(path.stem, []).append(path)
    return masks
