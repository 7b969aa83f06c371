"""PatchCore: coreset selection, nearest-neighbour scores, growing and budget memory, state,
and the gradient-free path through the Avalanche strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training.plugins import EWCPlugin
from sklearn.neighbors import NearestNeighbors
from torch.utils.data import TensorDataset

from strategies.detectors import build_detector
from strategies.detectors.memory_bank import greedy_coreset, nearest_neighbor_distances
from strategies.detectors.patchcore import flatten_patches, locally_aware_features
from strategies.errors import StrategiesError
from strategies.training.avalanche_strategy import DistillationStrategy


def test_coreset_picks_the_farthest_point_first() -> None:
    # on a line: from 0 the farthest is 11; then 2 (min distance 2 to {0, 11}); then 10 or 1
    # (both at distance 1): argmax takes the first, 1 (index 1)
    points = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    chosen = greedy_coreset(points, 4, start=0).tolist()
    assert chosen == [0, 4, 2, 1]


def test_coreset_is_a_k_center_cover_on_clusters() -> None:
    """Three tight, far apart clusters: a coreset of 3 takes one point of each."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    points = torch.cat([c + 0.1 * torch.randn(20, 2, generator=gen) for c in centres])
    chosen = greedy_coreset(points, 3, generator=gen)
    assert sorted((chosen // 20).tolist()) == [0, 1, 2]


def test_coreset_with_projection_still_covers_clusters() -> None:
    gen = torch.Generator().manual_seed(1)
    centres = 40.0 * torch.eye(4, 600)  # 4 far apart clusters in 600 dimensions
    points = torch.cat([c + 0.1 * torch.randn(50, 600, generator=gen) for c in centres])
    chosen = greedy_coreset(points, 4, projection_eps=0.9, generator=gen)
    assert sorted((chosen // 50).tolist()) == [0, 1, 2, 3]


def test_nearest_neighbour_equals_sklearn_brute_force() -> None:
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(300, 17)).astype(np.float32)
    queries = rng.normal(size=(1000, 17)).astype(np.float32)
    distances, indices = nearest_neighbor_distances(torch.from_numpy(queries),
                                                    torch.from_numpy(bank), chunk=128)
    reference = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(bank)
    want_d, want_i = reference.kneighbors(queries)
    np.testing.assert_allclose(distances.numpy(), want_d[:, 0], rtol=1e-4, atol=1e-4)
    assert (indices.numpy() == want_i[:, 0]).mean() > 0.999  # ties at float precision only


def test_locally_aware_features_pool_then_upsample() -> None:
    f1 = torch.zeros(1, 1, 4, 4)
    f1[0, 0, 1, 1] = 9.0
    f2 = torch.ones(1, 2, 2, 2)
    out = locally_aware_features([f1, f2])
    assert out.shape == (1, 3, 4, 4)
    assert float(out[0, 0, 0, 0]) == pytest.approx(1.0)  # 9 spread over a 3x3 window
    assert float(out[0, 0, 3, 3]) == 0.0
    # zero padding counts in the mean (torch's and anomalib's AvgPool2d default): on a 2x2 map
    # every window holds 4 of the 9 values; the bilinear upsampling of a constant is constant
    assert torch.allclose(out[0, 1:], torch.full((2, 4, 4), 4 / 9))


def _tasks(n: int = 3, images: int = 4, size: int = 32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(images, 3, size, size, generator=gen) + i for i in range(n)]


def test_growing_and_budget_memory_sizes() -> None:
    tasks = _tasks()  # 4 images of 32 px: 4 x 4 x 4 = 64 patches per task, coreset 0.25 -> 16
    growing = build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=0.25)
    budget = build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=0.25,
                            memory="budget", memory_budget=24)
    torch.manual_seed(0)
    sizes = {"growing": [], "budget": []}
    for images in tasks:
        for name, detector in (("growing", growing), ("budget", budget)):
            detector.fit([images[:2], images[2:]])
            sizes[name].append(detector.memory_bank.shape[0])
    assert sizes["growing"] == [16, 32, 48]
    assert sizes["budget"] == [16, 24, 24]
    assert growing.memory_stats()["memory_bank_patches"] == 48
    assert growing.memory_stats()["memory_bank_mb"] == pytest.approx(48 * 152 * 4 / 2**20,
                                                                     abs=1e-3)
    # the budget bank is the coreset of the union: it keeps patches of the first and the last
    # task, not only the newest ones
    with torch.no_grad():
        per_task = [flatten_patches(budget.embedding(budget(images))) for images in tasks]
    origin = [next(t for t, feats in enumerate(per_task) if (row == feats).all(dim=1).any())
              for row in budget.memory_bank]
    assert {0, 2} <= set(origin)


def test_training_images_score_lower_than_others_and_state_round_trips() -> None:
    torch.manual_seed(0)  # the same random teacher for both detectors
    detector = build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=1.0)
    train, other = _tasks(2)
    assert float(detector.anomaly_map(train).abs().max()) == 0.0  # empty bank: zero map
    detector.fit([train])
    seen = detector.image_scores(detector.anomaly_map(train))
    unseen = detector.image_scores(detector.anomaly_map(other))
    assert float(seen.max()) < float(unseen.min())
    torch.manual_seed(0)
    copy = build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=1.0)
    copy.load_state_dict(detector.state_dict())  # the empty bank is resized on load
    assert torch.equal(copy.memory_bank, detector.memory_bank)
    assert torch.equal(copy.anomaly_map(other), detector.anomaly_map(other))


@pytest.mark.parametrize("options, message", [
    ({"memory": "budget"}, "memory_budget"),
    ({"memory_budget": 10}, "memory: budget only"),
    ({"levels": [3, 2]}, "increasing"),
    ({"coreset_ratio": 0.0}, "coreset_ratio"),
])
def test_bad_options(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_detector("patchcore", "efficientnet_lite0", "none", **options)


def _experiences(tasks: list[torch.Tensor]):
    def dataset(images):
        labels = torch.zeros(len(images), dtype=torch.long)
        masks = torch.zeros(len(images), 1, *images.shape[-2:])
        return AvalancheDataset([TensorDataset(images, labels, masks)])

    sets = [dataset(images) for images in tasks]
    return benchmark_from_datasets(train=sets, test=sets)


def test_strategy_fits_once_per_task_without_optimizer() -> None:
    detector = build_detector("patchcore", "efficientnet_lite0", "none", coreset_ratio=0.25)
    calls: list[int] = []
    fit = detector.fit

    def counting_fit(batches):
        batches = list(batches)
        calls.append(sum(len(b) for b in batches))
        fit(batches)

    detector.fit = counting_fit
    strategy = DistillationStrategy(model=detector, optimizer=None, train_mb_size=3,
                                    train_epochs=5)
    assert strategy.train_epochs == 1 and strategy.optimizer is None
    bm = _experiences(_tasks(2))
    for experience in bm.train_stream:
        strategy.train(experience)
    assert calls == [4, 4]  # one fit per task with all its images, whatever train_epochs says
    assert detector.memory_bank.shape[0] == 32


def test_gradient_loop_plugins_are_refused() -> None:
    detector = build_detector("patchcore", "efficientnet_lite0", "none")
    with pytest.raises(StrategiesError, match=r"EWCPlugin.*without gradients"):
        DistillationStrategy(model=detector, optimizer=None, plugins=[EWCPlugin(1.0)])
    with pytest.raises(StrategiesError, match="needs an optimizer"):
        DistillationStrategy(model=build_detector("stpm", "efficientnet_lite0", "none"),
                             optimizer=None)
