"""The task router: nearest key on fabricated teacher features, defects do not reroute."""

from __future__ import annotations

import pytest
import torch

from strategies.continual.routing.router import (
    ROUTER_KINDS,
    RouterError,
    TaskRouter,
    pooled_descriptor,
)

CHANNELS = (4, 6, 8)
SIZES = (16, 8, 4)


def _task_images(task: int, n: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Teacher-like levels of ``n`` images of a task: a task-specific channel profile per level
    (non-negative, like post-ReLU features) plus noise."""
    levels = []
    for level, (c, s) in enumerate(zip(CHANNELS, SIZES, strict=True)):
        profile = torch.ones(c)
        profile[(task + level) % c] = 4.0  # the task's dominant channel on this level
        noise = 0.1 * torch.rand((n, c, s, s), generator=generator)
        levels.append(profile[None, :, None, None] + noise)
    return levels


def _router(kind: str, n_tasks: int = 3, n: int = 12) -> TaskRouter:
    generator = torch.Generator().manual_seed(0)
    router = TaskRouter(kind, CHANNELS)
    for task in range(n_tasks):
        router.add_task(pooled_descriptor(_task_images(task, n, generator)))
    return router


@pytest.mark.parametrize("kind", ROUTER_KINDS)
def test_router_picks_the_task_of_separable_features(kind: str) -> None:
    router = _router(kind)
    generator = torch.Generator().manual_seed(1)
    for task in range(3):
        routed = router.route(pooled_descriptor(_task_images(task, 5, generator)))
        assert routed.tolist() == [task] * 5


@pytest.mark.parametrize("kind", ROUTER_KINDS)
def test_a_defective_image_routes_to_its_own_task(kind: str) -> None:
    """A strong local defect (a 2x2 patch on the finest level, 1/64 of its locations, as high
    as another task's dominant channel) must not move the image to another task."""
    router = _router(kind)
    generator = torch.Generator().manual_seed(2)
    for task in range(3):
        levels = _task_images(task, 4, generator)
        other = (task + 1) % 3  # the defect looks like task `other`'s dominant channel
        levels[0][:, other % CHANNELS[0], 5:7, 5:7] = 40.0
        assert router.route(pooled_descriptor(levels)).tolist() == [task] * 4


def test_key_bytes_and_state_round_trip() -> None:
    router = _router("mahalanobis")
    dim = sum(CHANNELS)
    assert router.key_nbytes(0) == 4 * (dim + dim * dim)
    copy = TaskRouter("mahalanobis", CHANNELS)
    copy.load_state_dict(router.state_dict())
    z = torch.rand(7, dim)
    assert torch.equal(copy.distances(z), router.distances(z))


def test_bad_input_is_named() -> None:
    router = TaskRouter("prototype_cosine", CHANNELS)
    with pytest.raises(RouterError, match="no task keys"):
        router.route(torch.zeros(1, sum(CHANNELS)))
    with pytest.raises(RouterError, match=r"expected \(N, 18\)"):
        router.add_task(torch.zeros(3, 5))
    with pytest.raises(RouterError, match="unknown router kind"):
        TaskRouter("nearest", CHANNELS)


def test_task_distances_take_each_tasks_nearest_key_and_route_by_them() -> None:
    """Two categories in task 0 (two keys), one in task 1: the per-task distance is the smaller
    of task 0's two key distances, and its argmin is the routed task."""
    generator = torch.Generator().manual_seed(3)
    router = TaskRouter("prototype_cosine", CHANNELS)
    a = pooled_descriptor(_task_images(0, 6, generator))
    b = pooled_descriptor(_task_images(1, 6, generator))
    c = pooled_descriptor(_task_images(2, 6, generator))
    router.add_task(torch.cat([a, b]), groups=["a"] * 6 + ["b"] * 6)  # task 0: keys 0, 1
    router.add_task(c)  # task 1: key 2
    probe = pooled_descriptor(_task_images(1, 4, generator))  # looks like task 0's second key
    keys = router.distances(probe)
    per_task = router.task_distances(keys)
    assert per_task.shape == (4, 2)
    torch.testing.assert_close(per_task[:, 0], keys[:, :2].min(dim=1).values)
    torch.testing.assert_close(per_task[:, 1], keys[:, 2])
    assert per_task.argmin(dim=1).tolist() == router.route(probe).tolist() == [0] * 4
