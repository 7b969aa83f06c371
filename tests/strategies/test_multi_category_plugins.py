"""Replay and routing with tasks of several categories (data.tasks)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from avalanche.training.storage_policy import ExperienceBalancedBuffer

from cl_bench.data import ImageCache, build_benchmark, synthesize
from strategies.continual.replay import CategoryBalancedBuffer
from strategies.continual.routing.router import TaskRouter


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("multi") / "set", n_categories=4, n_train=3,
                      n_test=2, size=16)


def _fill(buffer, stream) -> list:
    for experience in stream:
        torch.manual_seed(7)
        buffer.post_adapt(None, experience)
    return [group.buffer for group in buffer.buffer_groups.values()]


def test_replay_buffer_is_balanced_by_category(root):
    bench = build_benchmark(root, image_size=16, cache=ImageCache(),
                            tasks=[["stripes", "disc", "checker"], ["ring"]])
    buffer = CategoryBalancedBuffer(max_size=6)
    _fill(buffer, list(bench.train_stream)[:1])
    assert Counter(buffer.buffer.category) == {"stripes": 2, "disc": 2, "checker": 2}
    _fill(buffer, list(bench.train_stream)[1:])
    # 6 places over 4 categories: 2, 2, 1, 1 (Avalanche's split of the remainder)
    assert Counter(buffer.buffer.category) == {"stripes": 2, "disc": 2, "checker": 1, "ring": 1}


def test_one_category_per_task_draws_what_the_experience_buffer_draws(root):
    bench = build_benchmark(root, image_size=16, cache=ImageCache())
    ours = _fill(CategoryBalancedBuffer(max_size=5), bench.train_stream)
    avalanche = _fill(ExperienceBalancedBuffer(max_size=5, adaptive_size=True),
                      bench.train_stream)
    assert len(ours) == len(avalanche) == 4
    for mine, theirs in zip(ours, avalanche, strict=True):
        assert len(mine) == len(theirs)
        for i in range(len(mine)):
            assert torch.equal(mine[i][0], theirs[i][0])


def test_router_keeps_one_key_per_category_of_a_task():
    """Task 0 holds two far-apart categories; task 1 sits between them. One mean key for task
    0 would lie in the middle and lose its own images to task 1; one key per category keeps
    them."""
    a, b = torch.tensor([[0.0, 10.0]] * 3), torch.tensor([[10.0, 0.0]] * 3)
    router = TaskRouter("prototype_euclidean", (2,))
    assert router.add_task(torch.cat([a, b]), ["a"] * 3 + ["b"] * 3) == 0
    assert router.add_task(torch.tensor([[3.0, 6.0]] * 2)) == 1
    assert len(router) == 2 and router.key_task == [0, 0, 1]
    assert router.route(torch.tensor([[0.0, 10.0], [10.0, 0.0], [3.0, 6.0]])).tolist() == [0, 0, 1]
    merged = TaskRouter("prototype_euclidean", (2,))
    merged.add_task(torch.cat([a, b]))
    merged.add_task(torch.tensor([[3.0, 6.0]] * 2))
    assert merged.route(torch.tensor([[0.0, 10.0]])).tolist() == [1]  # why keys per category
    restored = TaskRouter("prototype_euclidean", (2,))
    restored.load_state_dict(router.state_dict())
    assert restored.key_task == [0, 0, 1] and len(restored) == 2
