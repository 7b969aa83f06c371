"""Every kind of bad data ends in one clear DataError naming the path and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
from data_helpers import write_image
from PIL import ImageFile

from cl_bench.data import ImageCache, MVTecDataset, list_categories
from cl_bench.errors import ConfigError, DataError


def _dataset(root, split="test", category="widget", size=16):
    return MVTecDataset(root, category, split, size, cache=ImageCache(max_mb=0))


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing))) as err:
        _dataset(missing)
    assert "does not exist" in str(err.value) and "cl-bench data synth" in str(err.value)


def test_root_that_is_a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        list_categories(path)


def test_root_that_is_a_category_folder(tiny_root):
    with pytest.raises(DataError, match="is a category folder, not a dataset root") as err:
        list_categories(tiny_root / "widget")
    assert str(tiny_root) in str(err.value)


def test_root_without_categories(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="no category folders under"):
        list_categories(tmp_path)


def test_missing_category_lists_found_ones_and_suggests_the_closest(tiny_root):
    with pytest.raises(DataError) as err:
        _dataset(tiny_root, category="widgte")
    message = str(err.value)
    assert "'widgte' not found" in message and str(tiny_root) in message
    assert "gadget, widget" in message and "Did you mean 'widget'?" in message


def test_category_with_no_training_images(tiny_root):
    for path in (tiny_root / "widget/train/good").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="no training images") as err:
        _dataset(tiny_root, split="train")
    assert str(tiny_root / "widget/train/good") in str(err.value)


def test_category_without_a_train_good_folder(tiny_root):
    for path in (tiny_root / "widget/train/good").iterdir():
        path.unlink()
    (tiny_root / "widget/train/good").rmdir()
    with pytest.raises(DataError, match=r"no training images .*folder missing"):
        _dataset(tiny_root, split="train")


def test_defective_image_without_its_mask(tiny_root):
    mask = tiny_root / "widget/ground_truth/scratch/001_mask.png"
    mask.unlink()
    with pytest.raises(DataError) as err:
        _dataset(tiny_root)
    message = str(err.value)
    assert str(tiny_root / "widget/test/scratch/001.png") in message
    assert str(mask) in message and "has no mask" in message


def test_misnamed_mask_gets_a_rename_hint(tiny_root):
    mask = tiny_root / "widget/ground_truth/scratch/000_mask.png"
    mask.rename(mask.with_name("000.png"))
    with pytest.raises(DataError, match=r"rename it to 000_mask\.png"):
        _dataset(tiny_root)


def test_missing_ground_truth_folder(tiny_root):
    for path in (tiny_root / "widget/ground_truth/scratch").iterdir():
        path.unlink()
    (tiny_root / "widget/ground_truth/scratch").rmdir()
    with pytest.raises(DataError, match=r"has no mask.*\(and 1 more in test/scratch\)"):
        _dataset(tiny_root)


def test_mask_whose_size_differs_from_its_image(tiny_root):
    mask = tiny_root / "widget/ground_truth/scratch/000_mask.png"
    write_image(mask, np.zeros((10, 12), dtype=np.uint8))
    dataset = _dataset(tiny_root)  # cheap checks pass: the mask exists
    with pytest.raises(DataError) as err:
        dataset[2]
    message = str(err.value)
    assert str(mask) in message and "is 12x10" in message and "is 24x24" in message
    with pytest.raises(DataError, match=r"(?s)1 problem\(s\).*12x10"):
        dataset.validate(deep=True)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_file(category_factory, suffix):
    root = category_factory(suffix=suffix, size=(64, 64))
    broken = root / f"widget/train/good/001{suffix}"
    _truncate(broken)
    dataset = _dataset(root, split="train")
    dataset[0]
    with pytest.raises(DataError, match="unreadable or truncated") as err:
        dataset[1]
    assert str(broken) in str(err.value)
    with pytest.raises(DataError, match=re.escape(str(broken))):
        dataset.validate()


def test_truncation_is_caught_even_if_pillow_was_told_to_accept_it(category_factory, monkeypatch):
    root = category_factory(size=(64, 64))
    _truncate(root / "widget/train/good/000.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError, match="truncated"):
        _dataset(root, split="train")[0]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global setting is restored


def test_truncated_mask(tiny_root):
    mask = tiny_root / "widget/ground_truth/scratch/000_mask.png"
    _truncate(mask, keep=0.3)
    with pytest.raises(DataError, match=re.escape(str(mask))):
        _dataset(tiny_root).validate()


def test_file_that_is_not_an_image(tiny_root):
    bad = tiny_root / "widget/train/good/notes.txt"
    bad.write_text("x")
    with pytest.raises(DataError, match="is not an image") as err:
        _dataset(tiny_root, split="train")
    assert str(bad) in str(err.value)


def test_garbage_with_an_image_suffix(tiny_root):
    bad = tiny_root / "widget/train/good/zzz.png"
    bad.write_bytes(b"not a png at all")
    dataset = _dataset(tiny_root, split="train")
    with pytest.raises(DataError, match=re.escape(str(bad))):
        dataset.validate()


def test_hidden_files_are_ignored(tiny_root):
    (tiny_root / "widget/train/good/.DS_Store").write_bytes(b"\0")
    assert len(_dataset(tiny_root, split="train")) == 3


def test_empty_defect_folder(tiny_root):
    empty = tiny_root / "widget/test/crack"
    empty.mkdir()
    with pytest.raises(DataError, match=r"defect folder .* is empty") as err:
        _dataset(tiny_root)
    assert str(empty) in str(err.value)


def test_nested_folder_inside_an_image_folder(tiny_root):
    (tiny_root / "widget/train/good/rgb").mkdir()
    with pytest.raises(DataError, match="folder inside an image folder"):
        _dataset(tiny_root, split="train")


def test_missing_test_folder(category_factory):
    root = category_factory()
    import shutil

    shutil.rmtree(root / "widget/test")
    assert len(_dataset(root, split="train")) == 3
    with pytest.raises(DataError, match="has no test folder"):
        _dataset(root)


def test_bad_arguments_are_config_errors(tiny_root):
    with pytest.raises(ConfigError, match="split='val'"):
        MVTecDataset(tiny_root, "widget", "val")
    with pytest.raises(ConfigError, match="image_size=4"):
        MVTecDataset(tiny_root, "widget", "train", image_size=4)
    with pytest.raises(ConfigError, match="max_mb"):
        ImageCache(max_mb=-1)
