"""The Avalanche task stream: one experience per category, task orders, joint training."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from cl_bench.data import ImageCache, MVTecDataset, build_benchmark, resolve_order, synthesize
from cl_bench.errors import ConfigError, DataError

NAMES = ["stripes", "disc", "checker", "ring"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthesize(
        tmp_path_factory.mktemp("stream") / "set", n_categories=4, n_train=3, n_test=4, size=16
    )


def _build(root, **options):
    return build_benchmark(root, image_size=16, cache=ImageCache(), **options)


def test_one_experience_per_category_in_alphabetical_order(root):
    bench = _build(root)
    assert bench.categories == sorted(NAMES) and bench.n_tasks == 4
    assert len(bench.train_stream) == len(bench.test_stream) == 4
    for index, (train_exp, test_exp) in enumerate(
        zip(bench.train_stream, bench.test_stream, strict=True)
    ):
        name = bench.categories[index]
        assert train_exp.current_experience == test_exp.current_experience == index
        assert train_exp.category == test_exp.category == bench.category_of(test_exp) == name
        assert train_exp.dataset.category.uniques == {name}
        assert isinstance(bench.train_datasets[index], MVTecDataset)
        assert bench.train_datasets[index].category == bench.test_datasets[index].category == name
        assert len(train_exp.dataset) == 3 and len(test_exp.dataset) == 4
    assert (
        bench.train_stream[1].train().category == bench.categories[1]
    )  # survives Avalanche copies


def test_items_and_batches_are_exactly_image_label_mask(root):
    bench = _build(root)
    dataset = bench.test_stream[0].dataset
    item = dataset[3]
    assert len(item) == 3
    image, label, mask = item
    assert image.shape == (3, 16, 16) and label == 1 and mask.shape == (1, 16, 16)
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=dataset.collate_fn)))
    assert len(batch) == 3
    assert batch[0].shape == (4, 3, 16, 16) and batch[2].shape == (4, 1, 16, 16)
    assert batch[1].tolist() == [0, 0, 1, 1]
    assert list(dataset.defect_type) == bench.test_datasets[0].defect_types
    # what Avalanche's templates use: transform groups switched, no task labels anywhere
    assert len(dataset.train()[0]) == len(dataset.eval()[0]) == 3
    assert not hasattr(bench.train_stream[0], "task_labels")


def test_explicit_and_random_orders(root):
    explicit = ["ring", "checker", "stripes", "disc"]
    assert _build(root, order=explicit).categories == explicit
    assert [e.category for e in _build(root, order=explicit).test_stream] == explicit
    first = _build(root, order="random", seed=3).categories
    assert sorted(first) == sorted(NAMES)
    assert first == resolve_order(NAMES, "random", 3)
    orders = {tuple(resolve_order(NAMES, "random", seed)) for seed in range(10)}
    assert len(orders) > 1


def test_a_subset_of_categories(root):
    bench = _build(root, categories=["ring", "disc"])
    assert bench.categories == ["disc", "ring"]
    assert _build(root, order=["ring", "disc"]).categories == ["ring", "disc"]


def test_joint_stream_holds_every_category_in_one_training_experience(root):
    bench = _build(root, joint=True)
    assert len(bench.train_stream) == 1 and len(bench.test_stream) == 4
    joint = bench.train_stream[0]
    assert joint.category == "joint" and joint.categories == sorted(NAMES)
    assert len(joint.dataset) == 12 and joint.dataset.category.uniques == set(NAMES)
    assert [e.category for e in bench.test_stream] == sorted(NAMES)
    assert len(bench.train_datasets) == 4


def test_replay_style_subsets_and_concatenations_keep_the_category(root):
    bench = _build(root)
    first, second = bench.train_stream[0].dataset, bench.train_stream[1].dataset
    mixed = first.subset([0, 2]).concat(second.subset([1]))
    assert list(mixed.category) == [bench.categories[0]] * 2 + [bench.categories[1]]
    assert torch.equal(mixed[2][0], second[1][0])


def test_order_errors(root):
    with pytest.raises(ConfigError, match="not a permutation"):
        resolve_order(NAMES, ["ring", "disc"], 0)
    with pytest.raises(ConfigError, match="more than once"):
        resolve_order(NAMES, ["ring", "ring", "disc", "stripes", "checker"], 0)
    with pytest.raises(ConfigError, match="order='sorted'"):
        resolve_order(NAMES, "sorted", 0)
    with pytest.raises(DataError, match="Did you mean 'ring'"):
        _build(root, categories=["rign"])
