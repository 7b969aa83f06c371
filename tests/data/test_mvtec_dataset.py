"""MVTecDataset: items, attributes, image formats, masks and caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import write_image

from cl_bench.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageCache,
    MVTecDataset,
    denormalize,
    list_categories,
)


def test_items_follow_the_data_contract(tiny_root):
    train = MVTecDataset(tiny_root, "widget", "train", image_size=16, cache=ImageCache())
    test = MVTecDataset(tiny_root, "widget", "test", image_size=16, cache=ImageCache())
    assert len(train) == 3 and len(test) == 4
    image, label, mask = test[3]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 16)
    assert mask.dtype == torch.float32 and mask.shape == (1, 16, 16)
    assert isinstance(label, int) and label == 1
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    _, good_label, good_mask = test[0]
    assert good_label == 0 and good_mask.sum() == 0
    assert all(label == 0 for _, label, _ in train)


def test_attributes_list_paths_labels_defects_and_masks(tiny_root):
    test = MVTecDataset(tiny_root, "gadget", "test", image_size=16, cache=ImageCache())
    assert test.category == "gadget" and test.split == "test" and test.image_size == 16
    assert test.root == tiny_root
    assert test.defect_types == ["good", "good", "dent", "hole", "hole"]
    assert test.labels == [0, 0, 1, 1, 1]
    assert test.mask_paths[0] is None
    assert test.mask_paths[2] == tiny_root / "gadget/ground_truth/dent/000_mask.png"
    assert test.paths[3] == tiny_root / "gadget/test/hole/000.png"
    assert test.defect_counts() == {"good": 2, "dent": 1, "hole": 2}


def test_list_categories_ignores_files_hidden_and_unrelated_folders(tiny_root):
    (tiny_root / "license.txt").write_text("x")
    (tiny_root / ".hidden" / "train").mkdir(parents=True)
    (tiny_root / "docs").mkdir()
    (tiny_root / "docs" / "readme.md").write_text("x")  # a completely empty folder is an error
    assert list_categories(tiny_root) == ["gadget", "widget"]


def test_imagenet_normalisation_of_a_uniform_image(tmp_path, category_factory):
    root = category_factory(n_train=1)
    colour = np.array([200, 100, 50], dtype=np.uint8)
    write_image(root / "widget/train/good/000.png", np.broadcast_to(colour, (24, 24, 3)).copy())
    image, _, _ = MVTecDataset(root, "widget", "train", 8, cache=ImageCache())[0]
    expected = (colour / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(image[:, 4, 4].numpy(), expected, atol=1e-5)
    assert np.allclose(denormalize(image)[:, 0, 0].numpy(), colour / 255, atol=1e-5)
    batch = denormalize(image.unsqueeze(0).numpy())
    assert batch.shape == (1, 3, 8, 8) and np.allclose(batch[0, :, 0, 0], colour / 255, atol=1e-5)


def test_single_channel_images_become_three_equal_channels(category_factory):
    root = category_factory(channels=1)
    image, _, _ = MVTecDataset(root, "widget", "train", 16, cache=ImageCache())[0]
    raw = denormalize(image)
    assert image.shape == (3, 16, 16)
    assert torch.allclose(raw[0], raw[1], atol=1e-6) and torch.allclose(raw[1], raw[2], atol=1e-6)


def test_jpeg_and_non_square_images_are_resized_to_square(category_factory):
    root = category_factory(suffix=".jpg", size=(20, 40))
    dataset = MVTecDataset(root, "widget", "test", 16, cache=ImageCache())
    image, label, mask = dataset[2]
    assert image.shape == (3, 16, 16) and mask.shape == (1, 16, 16) and label == 1
    # the box mask (top-left quarter of a 40x20 image) stays the top-left quarter
    assert mask[0, :8, :8].min() == 1 and mask[0, 8:, :].max() == 0 and mask[0, :, 8:].max() == 0


@pytest.mark.parametrize("foreground", [254, 1, 128])
def test_masks_are_binarised_whatever_their_foreground_value(category_factory, foreground):
    root = category_factory(mask_value=foreground, size=(32, 32))
    _, _, mask = MVTecDataset(root, "widget", "test", 12, cache=ImageCache())[2]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask.sum() == 36  # nearest resizing of a 16x16 quarter of 32x32 to 12 px: 6x6


def test_palette_alpha_and_16_bit_images_load(category_factory):
    root = category_factory(n_train=3)
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(24, 24, 4), dtype=np.uint8)
    write_image(root / "widget/train/good/000.png", rgba)
    pal = write_image(root / "widget/train/good/001.png", rgba[:, :, :3])
    from PIL import Image

    Image.open(pal).convert("P").save(pal)
    deep = (rng.integers(0, 65536, size=(24, 24))).astype(np.uint16)
    Image.fromarray(deep).save(root / "widget/train/good/002.png")
    dataset = MVTecDataset(root, "widget", "train", 8, cache=ImageCache())
    for index in range(3):
        image, _, _ = dataset[index]
        assert image.shape == (3, 8, 8) and torch.isfinite(image).all()


def test_each_file_is_decoded_once_and_cached_as_uint8(tiny_root):
    cache = ImageCache(max_mb=16)
    dataset = MVTecDataset(tiny_root, "widget", "test", 16, cache=cache)
    first = [dataset[i] for i in range(len(dataset))]
    misses = cache.misses
    assert misses == 4 + 2  # four images, two masks
    second = [dataset[i] for i in range(len(dataset))]
    assert cache.misses == misses and cache.hits == 6
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    image_array, mask_array = dataset.arrays(2)
    assert image_array.dtype == np.uint8 and image_array.shape == (16, 16, 3)
    assert mask_array.dtype == np.uint8 and mask_array.shape == (16, 16)


def test_a_rewritten_file_is_decoded_again(category_factory):
    root = category_factory(n_train=1)
    cache = ImageCache()
    dataset = MVTecDataset(root, "widget", "train", 8, cache=cache)
    before = dataset[0][0]
    path = dataset.paths[0]
    write_image(path, np.zeros((30, 30, 3), dtype=np.uint8))
    import os

    os.utime(path, ns=(1, 1))  # a different mtime even on coarse-grained file systems
    after = dataset[0][0]
    assert not torch.equal(before, after)


def test_validate_passes_on_a_sound_dataset(tiny_root):
    for split in ("train", "test"):
        MVTecDataset(tiny_root, "gadget", split, 16, cache=ImageCache(max_mb=0)).validate()


def test_datasets_pickle_for_dataloader_workers(tiny_root):
    import pickle

    dataset = MVTecDataset(tiny_root, "gadget", "test", 16, cache=ImageCache(max_mb=8))
    expected = dataset[2]
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(copy.cache) == 0 and copy.cache.max_mb == 8
    image, label, mask = copy[2]
    assert torch.equal(image, expected[0]) and label == 1 and torch.equal(mask, expected[2])


def test_colour_and_alpha_masks_use_their_colour_not_their_alpha(category_factory):
    root = category_factory(size=(16, 16), defects={"scratch": 2})
    la = np.zeros((16, 16, 2), dtype=np.uint8)
    la[:4, :4, 0] = 200
    la[:, :, 1] = 255  # opaque everywhere
    write_image(root / "widget/ground_truth/scratch/000_mask.png", la)
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:4, :4, 2] = 255  # a blue foreground
    write_image(root / "widget/ground_truth/scratch/001_mask.png", rgb)
    dataset = MVTecDataset(root, "widget", "test", 16, cache=ImageCache())
    for index in (2, 3):
        mask = dataset[index][2]
        assert mask.sum() == 16 and mask[0, :4, :4].min() == 1


def _write_mask(path, bits, foreground, size=32):
    """A ``size`` x ``size`` mask of bit depth ``bits`` (1, 8, 16) whose top-left quarter is
    ``foreground``."""
    from PIL import Image

    dtype = {1: bool, 8: np.uint8, 16: np.uint16}[bits]
    array = np.zeros((size, size), dtype=dtype)
    array[: size // 2, : size // 2] = foreground
    image = Image.fromarray(array)
    assert image.mode == {1: "1", 8: "L", 16: "I;16"}[bits]
    image.save(path)


@pytest.mark.parametrize(
    ("bits", "foreground"),
    [(1, True), (8, 1), (8, 255), (16, 1), (16, 255), (16, 65535)],
)
def test_masks_are_binarised_on_their_own_values_whatever_their_bit_depth(
    category_factory, bits, foreground
):
    root = category_factory(size=(32, 32))
    _write_mask(root / "widget/ground_truth/scratch/000_mask.png", bits, foreground)
    dataset = MVTecDataset(root, "widget", "test", 12, cache=ImageCache())
    mask = dataset[2][2]
    assert mask.sum() == 36 and mask[0, :6, :6].min() == 1  # the 16x16 quarter at 12 px: 6x6
    assert dataset.empty_masks() == []
    full = MVTecDataset(root, "widget", "test", 32, cache=ImageCache())[2][2]
    assert full.sum() == 16 * 16


@pytest.mark.parametrize("size", [7, 12, 24, 31, 64])
def test_8_bit_masks_decode_as_before_binarising_first(tmp_path, size):
    # the previous order (resize with the nearest neighbour, then > 0) gives the same pixels
    from PIL import Image

    from cl_bench.data.imaging import decode_mask

    rng = np.random.default_rng(size)
    array = (rng.integers(0, 4, size=(24, 24)) * 85).astype(np.uint8)
    Image.fromarray(array).save(tmp_path / "m.png")
    before = np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.NEAREST)) > 0
    assert np.array_equal(decode_mask(tmp_path / "m.png", size).array, before.astype(np.uint8))
