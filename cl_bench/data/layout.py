"""The MVTec AD folder layout: finding categories, images and masks, with clear errors.

Layout (Bergmann et al., "The MVTec Anomaly Detection Dataset", CVPR 2019 / IJCV 2021)::

    <root>/<category>/train/good/<name>.png
    <root>/<category>/test/good/<name>.png
    <root>/<category>/test/<defect>/<name>.png
    <root>/<category>/ground_truth/<defect>/<name>_mask.png

Any folder under ``<root>`` that holds ``train/`` or ``test/`` is a category, so MVTec LOCO,
MVTec 3D-AD (RGB), VisA or MPDD converted to this layout load too. Only the cheap checks live
here (folders exist, images and masks are present); decoding happens in :mod:`.imaging`.
Hidden files (names starting with ``.``, e.g. ``.DS_Store``) are ignored; any other file that
is not an image is an error, so nothing is skipped silently. So are a mask without its image
(an orphan: the test set lost an image) and a ``ground_truth/good`` folder (good images have no
masks: they would be ignored). MPDD (Jezek et al., ICUMT 2021) is published in this layout.
VisA and BTAD have their own readers (:mod:`.visa`, :mod:`.btad`); :mod:`.formats` picks one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cl_bench.errors import DataError

#: file name suffixes read as images (case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"
SPLITS = ("train", "test")
MASK_SUFFIX = "_mask.png"
LAYOUT_HINT = (
    "expected layout: <root>/<category>/train/good/*.png, <root>/<category>/test/<good|defect>/"
    "*.png, <root>/<category>/ground_truth/<defect>/<stem>_mask.png"
)


class DataWarning(UserWarning):
    """Data that is loaded as published but that a user should know about (e.g. an empty mask)."""


#: problems shown in one error message; ``cl-bench data info ROOT --check`` lists them all
SHOWN_PROBLEMS = 30


def report(problems: list[str] | None, message: str) -> None:
    """Record ``message`` in ``problems`` (the scan goes on), or raise it when ``problems`` is
    None (callers that stop at the first problem)."""
    if problems is None:
        raise DataError(message)
    problems.append(message)


def problems_error(problems: list[str], where: str, limit: int | None = SHOWN_PROBLEMS
                   ) -> DataError:
    """One ``DataError`` for ``problems`` found in ``where``: the problem itself when there is
    one, else a count and one line per problem (the first ``limit``, then how many more)."""
    if len(problems) == 1:
        return DataError(problems[0])
    shown = problems if limit is None else problems[:limit]
    more = (f"\n  ... and {len(problems) - len(shown)} more; `cl-bench data info ROOT --check` "
            "lists them all") if len(shown) < len(problems) else ""
    return DataError(f"{len(problems)} problems in {where}:\n  " + "\n  ".join(shown) + more)


def settle(found: list[str], problems: list[str] | None, where: str) -> None:
    """End of a scan: hand ``found`` to the caller's ``problems`` list, or raise them all."""
    if problems is not None:
        problems.extend(found)
    elif found:
        raise problems_error(found, where)


def broken_link(entry: Path) -> str | None:
    """The problem of ``entry`` when it is a symbolic link that loops or points to nothing."""
    if not entry.is_symlink() or entry.exists():
        return None
    try:
        target = os.readlink(entry)
    except OSError:
        target = "?"
    return (f"{entry} is a symbolic link that loops or points to nothing (it points to "
            f"{target}); point it at the real file or remove it")


@dataclass(frozen=True)
class Sample:
    """One image of a split: its path, label (0 good, 1 defective), defect type and mask path."""

    path: Path
    label: int
    defect_type: str
    mask_path: Path | None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def check_root(root: str | Path) -> Path:
    """``root`` as a Path; raises ``DataError`` when it is not an existing folder."""
    path = Path(root).expanduser()
    link = broken_link(path)
    if link:
        raise DataError(f"dataset root {link}")
    if not path.exists():
        raise DataError(
            f"dataset root {path} does not exist; download the dataset and extract it there "
            f"(MVTec AD: https://www.mvtec.com/company/research/datasets/mvtec-ad; VisA, BTAD, "
            f"MPDD: see docs/datasets.md), or create a synthetic set with "
            f"`cl-bench data synth --out {path}`"
        )
    if not path.is_dir():
        raise DataError(f"dataset root {path} is a file, not a folder; {LAYOUT_HINT}")
    return path


def list_categories(root: str | Path) -> list[str]:
    """Names of the category folders (those holding ``train/`` or ``test/``) under ``root``, sorted.

    Raises ``DataError`` when ``root`` is missing, is itself a category folder, or holds none.
    """
    path = check_root(root)
    categories = [
        p.name for p in _visible(path) if p.is_dir() and any((p / s).is_dir() for s in SPLITS)
    ]
    if not categories:
        if any((path / s).is_dir() for s in SPLITS):
            raise DataError(
                f"{path} is a category folder, not a dataset root; pass its parent "
                f"{path.parent} as the root and {path.name!r} as the category"
            )
        found = ", ".join(p.name for p in _visible(path)[:10]) or "nothing"
        raise DataError(
            f"no category folders under {path} (found: {found}); a category folder holds "
            f"train/ and test/; {LAYOUT_HINT}"
        )
    check_no_empty_folders(path, "category")
    return categories


def check_no_empty_folders(root: Path, noun: str) -> None:
    """``DataError`` naming every completely empty folder under ``root`` (hidden files aside):
    most likely a {noun} whose files were never extracted, which would otherwise be skipped;
    or every symbolic link there that loops or points to nothing."""
    links = [problem for p in _visible(root) if (problem := broken_link(p))]
    if links:
        raise problems_error(links, str(root))
    empty = [p for p in _visible(root) if p.is_dir() and not _visible(p)]
    if empty:
        names = ", ".join(str(p) for p in empty)
        raise DataError(
            f"{names}: empty folder(s) under the dataset root {root}; a {noun} folder holds "
            f"train/ and test/. Extract the {noun}'s files there, or remove the empty folder(s)"
        )


def suggest(name: str, candidates: list[str]) -> str:
    """`` Did you mean 'x'?`` for the closest candidate (difflib), or an empty string."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    if not close:
        close = [c for c in candidates if name.lower() in c.lower() or c.lower() in name.lower()]
    return f" Did you mean {close[0]!r}?" if close else ""


def check_listed(name: str, found: list[str], message: str) -> None:
    """Raise ``DataError("<message>: <found, comma-separated>. Did you mean ...?")`` unless
    ``name`` is among ``found``; for layouts that list their categories (VisA, BTAD)."""
    if name not in found:
        raise DataError(f"{message}: {', '.join(found)}.{suggest(name, found)}")


def training_samples(good: Path, category: str, noun: str, hint: str,
                     problems: list[str] | None = None) -> list[Sample]:
    """The defect-free training images in ``good``, sorted by name, as samples; DataError
    naming the folder (``noun``: "category" or "product") and ``hint`` when there are none.
    Stray files in ``good`` are raised, or recorded in ``problems`` and left out."""
    images = list_images(good, problems) if good.is_dir() else []
    if not images:
        where = good if good.is_dir() else f"{good} (folder missing)"
        raise DataError(f"{noun} {category!r} has no training images in {where}; {hint}")
    return [Sample(p, 0, GOOD, None) for p in images]


def category_dir(root: str | Path, category: str) -> Path:
    """The folder of ``category``; a missing one raises ``DataError`` listing the ones found."""
    path = check_root(root)
    folder = path / category
    if category and folder.is_dir() and any((folder / s).is_dir() for s in SPLITS):
        return folder
    found = list_categories(path)
    if folder.is_dir():
        raise DataError(
            f"{folder} holds neither train/ nor test/, so it is not a category; categories "
            f"found under {path}: {', '.join(found)}. {LAYOUT_HINT}"
        )
    raise DataError(
        f"category {category!r} not found under {path}; categories found: {', '.join(found)}."
        f"{suggest(category, found)}"
    )


def list_images(folder: Path, problems: list[str] | None = None) -> list[Path]:
    """Image files in ``folder``, sorted; sub-folders, other files and broken symbolic links are
    problems (raised, or recorded in ``problems`` and skipped)."""
    images: list[Path] = []
    for entry in _visible(folder):
        link = broken_link(entry)
        if link:
            report(problems, link)
        elif entry.is_dir():
            report(problems,
                   f"{entry} is a folder inside an image folder; this loader reads flat folders "
                   f"of images (MVTec AD layout). Move its images up into {folder} (MVTec 3D-AD: "
                   f"use the rgb/ images) or remove it.")
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            report(problems,
                   f"{entry} is not an image (supported: {', '.join(IMAGE_SUFFIXES)}); remove it "
                   f"or move it out of {folder}")
        else:
            images.append(entry)
    return images


def mask_path_for(category_folder: Path, defect: str, image: Path) -> Path:
    """``<category>/ground_truth/<defect>/<stem>_mask.png``, the MVTec AD naming."""
    return category_folder / "ground_truth" / defect / f"{image.stem}{MASK_SUFFIX}"


def _missing_masks(defect: str, missing: list[tuple[Path, Path]]) -> list[str]:
    """One problem per image without its mask; one for all when the mask folder is missing."""
    advice = ("Every defective image needs ground_truth/<defect>/<stem>_mask.png; add the mask "
              "or remove the image.")
    image, mask = missing[0]
    if not mask.parent.is_dir():
        more = f" (and {len(missing) - 1} more in test/{defect})" if len(missing) > 1 else ""
        return [f"defective test image {image} has no mask: expected {mask}{more}. {advice} "
                f"The folder {mask.parent} does not exist."]
    found = []
    for image, mask in missing:
        link = broken_link(mask)
        if link:
            found.append(f"the mask of defective test image {image}: {link}")
            continue
        other = sorted(p.name for p in mask.parent.glob(f"{image.stem}*"))
        hint = f" Found {', '.join(other[:3])} instead: rename it to {mask.name}." if other else ""
        found.append(f"defective test image {image} has no mask: expected {mask}. {advice}{hint}")
    return found


def scan_split(root: str | Path, category: str, split: str,
               problems: list[str] | None = None) -> list[Sample]:
    """All samples of ``split`` ("train" or "test") of ``category``, after the cheap checks.

    Order: train/good sorted by name; test/good first, then the defect folders alphabetically.
    Problems of single files (a stray file, a missing or orphan mask, an empty defect folder)
    are all collected: with ``problems`` None they are raised as one ``DataError``, else
    appended to ``problems`` and the files concerned left out. A missing category or test
    folder is raised at once.
    """
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    folder = category_dir(root, category)
    found: list[str] = []
    if split == "train":
        samples = training_samples(folder / "train" / GOOD, category, "category",
                                   f"put its defect-free images there. {LAYOUT_HINT}", found)
        settle(found, problems, f"{folder} (train)")
        return samples

    test = folder / "test"
    if not test.is_dir():
        raise DataError(
            f"category {category!r} has no test folder {test}; create test/good and "
            f"test/<defect> folders. {LAYOUT_HINT}"
        )
    subfolders = [p for p in _visible(test) if p.is_dir()]
    for stray in (p for p in _visible(test) if not p.is_dir()):
        found.append(broken_link(stray) or (
            f"{stray} is a file directly in {test}; test images belong in test/good or "
            f"test/<defect>/. Move or remove it."))
    if not subfolders:
        raise DataError(f"{test} holds no test/good or test/<defect> folder. {LAYOUT_HINT}")
    subfolders.sort(key=lambda p: (p.name != GOOD, p.name))
    samples: list[Sample] = []
    expected: set[Path] = set()  # the mask of every defective image, found or not
    for sub in subfolders:
        images = list_images(sub, found)
        if not images:
            kind = "good" if sub.name == GOOD else "defect"
            found.append(f"{kind} folder {sub} is empty; add its images or remove the folder")
            continue
        if sub.name == GOOD:
            samples.extend(Sample(p, 0, GOOD, None) for p in images)
            continue
        masks = [(p, mask_path_for(folder, sub.name, p)) for p in images]
        expected.update(m for _, m in masks)
        missing = [(p, m) for p, m in masks if not m.is_file()]
        if missing:
            found.extend(_missing_masks(sub.name, missing))
        samples.extend(Sample(p, 1, sub.name, m) for p, m in masks if m.is_file())
    check_mask_folders(folder / "ground_truth", samples, GOOD, mvtec_image_for_mask, found,
                       expected)
    settle(found, problems, f"{folder} (test)")
    return samples


def mvtec_image_for_mask(mask: Path) -> Path:
    """The test image an MVTec mask ``ground_truth/<defect>/<stem>_mask.png`` belongs to."""
    stem = mask.name[: -len(MASK_SUFFIX)] if mask.name.endswith(MASK_SUFFIX) else mask.stem
    return mask.parents[2] / "test" / mask.parent.name / f"{stem}.png"


def check_mask_folders(
    ground_truth: Path, samples: list[Sample], good: str, expected_image: Callable[[Path], object],
    problems: list[str] | None = None, claimed: set[Path] | None = None,
) -> None:
    """Every mask file under ``ground_truth/`` belongs to a defective sample; no good-mask folder.

    ``expected_image(mask)`` names the image a stray mask would belong to, for the message;
    ``claimed``: masks of images left out for another problem (not orphans). Each problem (a
    ``ground_truth/<good>`` folder, every orphan mask) is raised, or recorded in ``problems``.
    """
    if not ground_truth.is_dir():
        return
    used = {s.mask_path for s in samples if s.mask_path is not None} | (claimed or set())
    for sub in _visible(ground_truth):
        if not sub.is_dir():
            report(problems, broken_link(sub) or (
                f"{sub} is a file directly in {ground_truth}; masks belong in "
                f"{ground_truth}/<defect>/. Move or remove it."))
            continue
        if sub.name == good:
            report(problems,
                   f"{sub} exists, but good images have no masks (their masks are all zero by "
                   f"definition), so its {len(_visible(sub))} file(s) would be ignored. Remove "
                   f"the folder; if those images are in fact defective, move them to a defect "
                   f"folder with their masks.")
            continue
        for orphan in (m for m in _visible(sub) if m not in used):
            report(problems,
                   f"mask {orphan} has no image: expected {expected_image(orphan)}. The test "
                   f"set lacks an image its masks describe; restore the image (with the mask's "
                   f"name) or delete the mask.")
