"""Tiny generated datasets in the layouts their authors publish (VisA, BTAD, MPDD).

Images are random pixels, never copies of the real sets; only the folder structure, file
formats, naming and mask conventions follow the releases (see docs/datasets.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from data_helpers import make_category, random_image, write_image

VISA_HEADER = "object,split,label,image,mask"


def visa_mask(height: int, width: int, value: int) -> np.ndarray:
    """A VisA-style mask: the defect marked with a small class index (``value``), not 255."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: height // 2, : width // 2] = value
    return mask


def make_visa(root: Path, plan: dict[str, dict[str, list[str]]], size=(20, 30), seed=0) -> Path:
    """VisA as published: ``<cat>/Data/Images/{Normal,Anomaly}/*.JPG``,
    ``<cat>/Data/Masks/Anomaly/*.png`` and ``split_csv/1cls.csv``.

    ``plan[category]`` has keys ``train`` and ``test_normal`` (normal image names),
    ``test_anomaly`` (anomaly names, each with a mask) and optionally ``unlisted`` (normal images
    on disk that the split file does not list). Rows are written in a shuffled order, as the
    published file is not sorted.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    rows = []
    for category, parts in plan.items():
        data = root / category / "Data"
        for name in [*parts["train"], *parts["test_normal"], *parts.get("unlisted", [])]:
            write_image(data / "Images" / "Normal" / f"{name}.JPG",
                        random_image(rng, height, width), fmt="JPEG")
        for name in parts["train"]:
            rows.append(f"{category},train,normal,{category}/Data/Images/Normal/{name}.JPG,")
        for name in parts["test_normal"]:
            rows.append(f"{category},test,normal,{category}/Data/Images/Normal/{name}.JPG,")
        for k, name in enumerate(parts["test_anomaly"]):
            write_image(data / "Images" / "Anomaly" / f"{name}.JPG",
                        random_image(rng, height, width), fmt="JPEG")
            write_image(data / "Masks" / "Anomaly" / f"{name}.png",
                        visa_mask(height, width, 1 + k % 3))
            rows.append(f"{category},test,anomaly,{category}/Data/Images/Anomaly/{name}.JPG,"
                        f"{category}/Data/Masks/Anomaly/{name}.png")
    order = rng.permutation(len(rows))
    split = root / "split_csv" / "1cls.csv"
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text("\n".join([VISA_HEADER, *(rows[i] for i in order)]) + "\n")
    return root


#: a small VisA: the expectation the tests check is written out by hand beside it
VISA_PLAN = {
    "candle": {"train": ["0003", "0000", "0001", "0002"], "test_normal": ["0004", "0005"],
               "test_anomaly": ["001", "000"], "unlisted": ["0099"]},
    "pcb1": {"train": ["0010", "0011", "0012"], "test_normal": ["0013"],
             "test_anomaly": ["000", "001", "002"]},
}


#: BTAD's products: image suffix, mask suffix (01: BMP images with PNG masks, 02: PNG and PNG,
#: 03: BMP and BMP, as in the release)
BTAD_SUFFIXES = {"01": (".bmp", ".png"), "02": (".png", ".png"), "03": (".bmp", ".bmp")}


def make_btad(root: Path, counts: dict[str, tuple[int, int, int]], size=(24, 16),
              seed=0) -> Path:
    """BTAD as published: ``<product>/train/ok``, ``test/ok``, ``test/ko``, ``ground_truth/ko``
    with masks named like their images (the suffix may differ: :data:`BTAD_SUFFIXES`).

    ``counts[product] = (train ok, test ok, test ko)``.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    for product, (n_train, n_ok, n_ko) in counts.items():
        image_suffix, mask_suffix = BTAD_SUFFIXES[product]
        folder = root / product
        for i in range(n_train):
            write_image(folder / "train" / "ok" / f"{i:04d}{image_suffix}",
                        random_image(rng, height, width))
        for i in range(n_ok):
            write_image(folder / "test" / "ok" / f"{i:04d}{image_suffix}",
                        random_image(rng, height, width))
        for i in range(n_ko):
            write_image(folder / "test" / "ko" / f"{i:04d}{image_suffix}",
                        random_image(rng, height, width))
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[: height // 2, : width // 2] = 255
            write_image(folder / "ground_truth" / "ko" / f"{i:04d}{mask_suffix}", mask)
    return root


#: MPDD's categories and some of its defect types (Jezek et al., ICUMT 2021)
MPDD_PLAN = {
    "bracket_black": {"hole": 2, "scratches": 1},
    "connector": {"parts_mismatch": 2},
    "tubes": {"anomalous": 1},
}


def make_mpdd(root: Path, seed=0) -> Path:
    """MPDD as published: the MVTec AD layout (``<stem>_mask.png`` masks, 0/255)."""
    for i, (category, defects) in enumerate(MPDD_PLAN.items()):
        make_category(root, category, n_train=3, n_good=2, defects=defects, size=(20, 24),
                      seed=seed + i)
    return root


def mvtec_as_visa(dest: Path, categories: dict[str, Path]) -> Path:
    """A VisA-layout view of MVTec-layout category folders (``categories``: VisA name -> the
    folder holding ``train/``, ``test/``, ``ground_truth/``), written into ``dest``: the images
    and masks are symbolic links (nothing copied, so real images never enter the repository),
    and ``split_csv/1cls.csv`` lists train/good as ``train,normal``, test/good as
    ``test,normal`` and every defect image as ``test,anomaly`` with its mask."""
    rows = []

    def link(target: Path, relative: str) -> str:
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target.resolve())
        return relative

    for name, folder in categories.items():
        images = f"{name}/Data/Images"
        for split in ("train", "test"):
            for image in sorted((folder / split / "good").iterdir()):
                rel = link(image, f"{images}/Normal/{split}_{image.name}")
                rows.append(f"{name},{split},normal,{rel},")
        for defect in sorted(p for p in (folder / "test").iterdir() if p.name != "good"):
            for image in sorted(defect.iterdir()):
                mask = folder / "ground_truth" / defect.name / f"{image.stem}_mask.png"
                stem = f"{defect.name}_{image.stem}"
                rel = link(image, f"{images}/Anomaly/{stem}{image.suffix}")
                rel_mask = link(mask, f"{name}/Data/Masks/Anomaly/{stem}.png")
                rows.append(f"{name},test,anomaly,{rel},{rel_mask}")
    split_file = dest / "split_csv" / "1cls.csv"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("\n".join([VISA_HEADER, *rows]) + "\n")
    return dest
