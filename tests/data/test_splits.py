"""Tasks of several categories: the named X-Y splits, data.tasks checks, the task stream."""

from __future__ import annotations

import pytest

from cl_bench.data import ImageCache, build_benchmark, synthesize
from cl_bench.data.splits import (
    DATASET_CATEGORIES,
    NAMED_SPLITS,
    check_tasks,
    resolve_tasks,
)
from cl_bench.errors import ConfigError, DataError

MVTEC = list(DATASET_CATEGORIES["mvtec"])
VISA = list(DATASET_CATEGORIES["visa"])


@pytest.mark.parametrize(("name", "sizes", "last"), [
    ("mvtec_14_1", [14, 1], ["zipper"]),
    ("mvtec_10_5", [10, 5], ["tile", "toothbrush", "transistor", "wood", "zipper"]),
    ("mvtec_3x5", [3, 3, 3, 3, 3], ["transistor", "wood", "zipper"]),
    ("mvtec_10_1x5", [10, 1, 1, 1, 1, 1], ["zipper"]),
    ("visa_11_1", [11, 1], ["pipe_fryum"]),
    ("visa_8_4", [8, 4], ["pcb2", "pcb3", "pcb4", "pipe_fryum"]),
    ("visa_8_1x4", [8, 1, 1, 1, 1], ["pipe_fryum"]),
])
def test_named_splits_follow_the_published_category_files(name, sizes, last):
    split = NAMED_SPLITS[name]
    tasks = split.tasks
    assert [len(t) for t in tasks] == sizes and tasks[-1] == last
    every = [c for t in tasks for c in t]
    assert every == list(DATASET_CATEGORIES[split.dataset])  # each category once, in order


def test_cdad_setting_3_base_tasks():
    """data/MVTec-AD/3/train_1.json .. train_3.json of CDAD's code hold these categories."""
    assert NAMED_SPLITS["mvtec_3x5"].tasks[:3] == [["bottle", "cable", "capsule"],
                                                   ["carpet", "grid", "hazelnut"],
                                                   ["leather", "metal_nut", "pill"]]
    assert NAMED_SPLITS["visa_8_4"].tasks[0][-1] == "pcb1"


@pytest.mark.parametrize(("tasks", "said"), [
    ([["a", "b"], []], "task 1 is empty"),
    ([["a", "b"], ["b"]], "'b' is in tasks 0 and 1"),
    ([["a", "a"]], "'a' is in task 0 twice"),
    ("mvtec_15_0", "unknown split 'mvtec_15_0'"),
    ([], "non-empty list of tasks"),
])
def test_bad_task_lists_are_refused_before_any_data_is_read(tasks, said):
    with pytest.raises(ConfigError, match=said):
        check_tasks(tasks)


def test_resolve_tasks_checks_against_the_data():
    assert resolve_tasks([["a", "b"], ["c"]], ["a", "b", "c"], "root") == [["a", "b"], ["c"]]
    with pytest.raises(DataError, match="category 'z' is not in root"):
        resolve_tasks([["a", "z"]], ["a", "b"], "root", allow_unused=True)
    with pytest.raises(DataError, match=r"leaves out 1 category of root: c.*allow_unused"):
        resolve_tasks([["a", "b"]], ["a", "b", "c"], "root")
    assert resolve_tasks([["a", "b"]], ["a", "b", "c"], "root", allow_unused=True) == [["a", "b"]]


def test_a_named_split_on_the_other_dataset_is_refused():
    with pytest.raises(DataError, match=r"'visa_8_4' is a VisA split.*MVTec AD splits"):
        resolve_tasks("visa_8_4", MVTEC, "mvtec_root", "mvtec")
    with pytest.raises(DataError, match="'mvtec_14_1' is a MVTec AD split"):
        resolve_tasks("mvtec_14_1", VISA, "visa_root")
    with pytest.raises(DataError, match="layout visa"):  # the layout alone tells
        resolve_tasks("mvtec_14_1", MVTEC, "root", "visa")
    assert len(resolve_tasks("mvtec_14_1", MVTEC, "mvtec_root", "mvtec")) == 2


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("split") / "set", n_categories=4, n_train=3,
                      n_test=4, size=16)


def _build(root, **options):
    return build_benchmark(root, image_size=16, cache=ImageCache(), **options)


def test_a_task_trains_on_the_union_of_its_categories_and_tests_each_one(root):
    bench = _build(root, tasks=[["stripes", "disc"], ["checker", "ring"]])
    assert bench.categories == ["stripes", "disc", "checker", "ring"]
    assert bench.groups == [[0, 1], [2, 3]]
    assert bench.task_names == ["stripes+disc", "checker+ring"]
    train, test = list(bench.train_stream), list(bench.test_stream)
    assert len(train) == 2 and len(test) == 4
    assert [len(e.dataset) for e in train] == [6, 6]
    assert train[0].dataset.category.uniques == {"stripes", "disc"}
    assert train[0].category == "stripes+disc" and train[1].categories == ["checker", "ring"]
    assert [e.task_index for e in test] == [0, 0, 1, 1]
    assert [e.category for e in test] == bench.categories


def test_orders_permute_whole_tasks_and_other_streams_follow(root):
    tasks = [["stripes"], ["disc", "checker"], ["ring"]]
    assert _build(root, tasks=tasks, order="reversed").task_names == [
        "stripes", "ring", "disc+checker"]  # the task names sorted backwards
    cumulative = _build(root, tasks=tasks, cumulative=True)
    assert [len(e.dataset) for e in cumulative.train_stream] == [3, 9, 12]
    joint = _build(root, tasks=tasks, joint=True)
    assert len(joint.train_stream) == 1 and len(joint.train_stream[0].dataset) == 12
    assert joint.groups == [[0], [1, 2], [3]]


def test_one_category_per_task_is_unchanged(root):
    bench = _build(root)
    assert bench.task_columns is None and bench.groups == [[0], [1], [2], [3]]
    assert bench.task_names == bench.categories
