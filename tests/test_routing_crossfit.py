"""``python -m cl_bench.benchmarks.routing --crossfit K``: routing held-out training images,
the router measurement that reads no test image (for choosing a router on real data)."""

from __future__ import annotations

import pytest
import torch

from cl_bench.benchmarks.routing import crossfit_folds, measure_crossfit


def test_folds_partition_the_images() -> None:
    folds = crossfit_folds(10, 3)
    assert sorted(torch.cat(folds).tolist()) == list(range(10))
    assert [len(f) for f in folds] == [4, 3, 3]
    with pytest.raises(ValueError, match="--crossfit 11"):
        crossfit_folds(10, 11)


def test_separate_tasks_are_routed_right_and_identical_ones_are_not() -> None:
    g = torch.Generator().manual_seed(0)
    # post-ReLU-like descriptors: every level of task t peaks on channel t
    bump = [torch.cat([torch.eye(3)[t], torch.eye(3)[t]]) for t in range(3)]
    apart = [0.5 + 3 * bump[t] + torch.rand(10, 6, generator=g) * 0.05 for t in range(3)]
    for kind, r in measure_crossfit(apart, (3, 3), folds=5).items():
        assert r == {"all_steps_good": 1.0, "last_step_good": 1.0, "worst_step": 1.0}, kind
    same = torch.randn(10, 4, generator=g).abs() + 1.0
    # two tasks with the same images: ties go to the first key, so task 1 is never found;
    # steps: 10 of 10, then 10 of 20 -> 20 of 30 over all steps
    for kind, r in measure_crossfit([same, same.clone()], (2, 2), folds=5).items():
        assert r["last_step_good"] == 0.5 and r["all_steps_good"] == pytest.approx(20 / 30), kind
