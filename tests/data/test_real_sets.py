"""Real images from ../shared/data (skipped where absent): every set loads, masks line up."""

from __future__ import annotations

import pytest
import torch

from cl_bench.data import MVTecDataset, list_categories
from cl_bench.data.summary import summarize_category

pytestmark = pytest.mark.real_data

MVTEC_AD = [
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
    "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
]  # fmt: skip

#: set -> {category: (train/good, test/good, test/defective, {defect: count})}, from data/README.md
EXPECTED = {
    "mvtec_ad_fullres": {
        "bottle": (10, 4, 4, {"broken_large": 4}),
        "metal_nut": (10, 4, 4, {"bent": 4}),
        "screw": (10, 4, 4, {"manipulated_front": 4}),
        "zipper": (10, 4, 4, {"broken_teeth": 4}),
    },
    "mvtec_ad_grid": {
        "grid": (
            25,
            3,
            11,
            {"bent": 3, "broken": 2, "glue": 2, "metal_contamination": 2, "thread": 2},
        ),
    },
    "hazelnut_toy": {"hazelnut": (28, 6, 17, {"colour": 17})},
    "mvtec_loco": {"juice_bottle": (8, 4, 6, {"logical_anomalies": 6})},
    "mvtec_3d_rgb": {
        "tire": (12, 4, 16, {"combined": 4, "contamination": 4, "cut": 4, "hole": 4}),
    },
}
SIZE = 64


def _check_test_split(dataset: MVTecDataset) -> None:
    """Every item follows the contract; defective items carry a mask that lies on the image."""
    for index in range(len(dataset)):
        image, label, mask = dataset[index]
        assert image.shape == (3, SIZE, SIZE) and mask.shape == (1, SIZE, SIZE)
        assert torch.isfinite(image).all()
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        if label == 1:
            assert 0 < mask.sum() < SIZE * SIZE, dataset.paths[index]
        else:
            assert mask.sum() == 0


def test_mvtec_ad_mini_every_category(shared_data):
    root = shared_data / "mvtec_ad_mini"
    assert list_categories(root) == MVTEC_AD
    for category in MVTEC_AD:
        train = MVTecDataset(root, category, "train", SIZE)
        test = MVTecDataset(root, category, "test", SIZE)
        assert len(train) == 10 and test.labels.count(0) == 4 and test.labels.count(1) == 4
        assert sum(m is not None for m in test.mask_paths) == 4
        assert train[0][0].shape == (3, SIZE, SIZE)
        test.validate()  # decodes everything: mask sizes equal image sizes
        _check_test_split(test)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_other_sets_load_with_the_expected_counts(shared_data, name):
    root = shared_data / name
    assert list_categories(root) == sorted(EXPECTED[name])
    for category, (n_train, n_good, n_defective, defects) in EXPECTED[name].items():
        summary = summarize_category(root, category)
        assert (summary.n_train, summary.n_test_good, summary.n_test_defective) == (
            n_train,
            n_good,
            n_defective,
        )
        assert summary.defect_counts == defects and summary.n_masks == n_defective
        test = MVTecDataset(root, category, "test", SIZE)
        _check_test_split(test)
        train = MVTecDataset(root, category, "train", SIZE)
        assert train[0][0].shape == (3, SIZE, SIZE)


def test_the_peculiar_files(shared_data):
    # single-channel 1024 px PNG (screw), JPEG with one 512x522 image, 1600x800, 254-valued masks
    screw = summarize_category(shared_data / "mvtec_ad_fullres", "screw")
    assert set(screw.image_modes) == {"L"} and set(screw.image_sizes) == {(1024, 1024)}
    hazelnut = summarize_category(shared_data / "hazelnut_toy", "hazelnut")
    assert set(hazelnut.image_formats) == {"JPEG"} and (512, 522) in hazelnut.image_sizes
    odd = MVTecDataset(shared_data / "hazelnut_toy", "hazelnut", "train", SIZE)
    assert odd[odd.paths.index(shared_data / "hazelnut_toy/hazelnut/train/good/01.jpg")][0].shape[
        1:
    ] == (SIZE, SIZE)
    loco = summarize_category(shared_data / "mvtec_loco", "juice_bottle")
    assert set(loco.image_sizes) == {(800, 1600)}
    tire = MVTecDataset(shared_data / "mvtec_3d_rgb", "tire", "test", SIZE)
    _, mask = tire.arrays(tire.labels.index(1))
    assert mask.max() == 1  # foreground 254 binarised


def test_real_sets_as_a_cross_dataset_sequence(shared_data):
    """Two real roots as named sources: task names keep their set, every layout check passes
    on real files (no orphan mask, no ground_truth/good, no empty mask of a defective image).
    No real VisA, BTAD or MPDD subset exists under ../shared/data (its README), so those
    layouts are checked on generated fixtures only (test_layouts.py)."""
    import warnings

    from cl_bench.data import DataWarning, ImageCache, Source, build_benchmark

    sources = [Source(shared_data / "mvtec_ad_mini", "mvtec", "mvtec", ("bottle", "screw")),
               Source(shared_data / "hazelnut_toy", "auto", "toy")]
    tasks = build_benchmark(sources, image_size=SIZE, cache=ImageCache(max_mb=0))
    assert tasks.categories == ["mvtec/bottle", "mvtec/screw", "toy/hazelnut"]
    assert [len(d) for d in tasks.train_datasets] == [10, 10, 28]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        for dataset in tasks.test_datasets:
            assert dataset.empty_masks() == []
            _check_test_split(dataset)
