"""The checks of issue #14: orphan masks, ``ground_truth/good`` and empty masks of defective images.

Orphan masks and a ``ground_truth/good`` folder are errors; an all-zero mask of a defective image
is a warning (docs/datasets.md, "Data checks", says why). Each test failed on the loader before
these checks existed (it accepted all three in silence).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from data_helpers import write_image

from cl_bench.cli import main
from cl_bench.data import ImageCache, MVTecDataset
from cl_bench.errors import DataError


def _dataset(root, split="test", category="widget", size=16):
    return MVTecDataset(root, category, split, size, cache=ImageCache(max_mb=0))


def test_orphan_mask_is_an_error_naming_it(tiny_root):
    orphan = write_image(tiny_root / "widget/ground_truth/scratch/007_mask.png",
                         np.full((24, 24), 255, dtype=np.uint8))
    with pytest.raises(DataError) as err:
        _dataset(tiny_root)
    message = str(err.value)
    assert str(orphan) in message and "no image" in message
    assert str(tiny_root / "widget/test/scratch/007.png") in message  # the image it expects


def test_mask_folder_of_a_defect_without_test_images_is_an_error(tiny_root):
    orphan = write_image(tiny_root / "widget/ground_truth/crack/000_mask.png",
                         np.full((24, 24), 255, dtype=np.uint8))
    with pytest.raises(DataError, match="no image") as err:
        _dataset(tiny_root)
    assert str(orphan) in str(err.value)


def test_ground_truth_good_folder_is_an_error(tiny_root):
    folder = tiny_root / "widget/ground_truth/good"
    write_image(folder / "000_mask.png", np.zeros((24, 24), dtype=np.uint8))
    with pytest.raises(DataError) as err:
        _dataset(tiny_root)
    message = str(err.value)
    assert str(folder) in message and "good images have no masks" in message


def test_empty_mask_of_a_defective_image_warns_naming_it(tiny_root):
    mask = write_image(tiny_root / "widget/ground_truth/scratch/001_mask.png",
                       np.zeros((24, 24), dtype=np.uint8))
    dataset = _dataset(tiny_root)
    index = dataset.mask_paths.index(mask)
    with pytest.warns(UserWarning, match="marks no defect pixel") as caught:
        _, label, target = dataset[index]
    assert str(mask) in str(caught[0].message)
    assert label == 1 and target.sum() == 0  # kept as published: label 1, empty mask


def test_nonempty_masks_do_not_warn(tiny_root):
    dataset = _dataset(tiny_root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for index in range(len(dataset)):
            dataset[index]


def test_data_info_check_lists_empty_masks(tiny_root, capsys):
    mask = write_image(tiny_root / "widget/ground_truth/scratch/000_mask.png",
                       np.zeros((24, 24), dtype=np.uint8))
    assert main(["data", "info", str(tiny_root), "--check"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.out and str(mask) in captured.out


def test_prepare_run_says_empty_masks_on_the_console_and_for_the_manifest(tiny_root):
    """A run states every empty mask of a defective image before training: on the console and
    in the notes that the runner writes into ``manifest.json`` (``warnings``)."""
    from cl_bench.config import validate
    from cl_bench.run.experiment import prepare_run

    mask = write_image(tiny_root / "widget/ground_truth/scratch/001_mask.png",
                       np.zeros((24, 24), dtype=np.uint8))
    cfg = validate({"data": {"source": "folder", "root": str(tiny_root), "image_size": 32},
                    "model": {"methods": ["stpm"], "weights": "none"}, "device": "cpu"})
    said: list[str] = []
    prepared = prepare_run(cfg, said.append)
    image = tiny_root / "widget/test/scratch/001.png"
    assert any(str(mask) in note and str(image) in note for note in prepared.warnings)
    assert any(str(mask) in line for line in said)
