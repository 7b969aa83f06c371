"""The routing plugin inside a real DistillationStrategy: experts kept and used per image,
one teacher pass, resumable state, warm and fresh starts."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from strategies.continual.routing.plugin import RoutingPlugin
from strategies.continual.routing.router import pooled_descriptor
from strategies.detectors import build_detector
from strategies.training.avalanche_strategy import DistillationStrategy


class Scores(SupervisedPlugin):
    """Image scores and maps per evaluated task (what the runner's ScoreCollector keeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.scores: dict[int, list[np.ndarray]] = {}
        self.maps: dict[int, list[np.ndarray]] = {}

    def before_eval(self, strategy, **kwargs) -> None:
        self.scores, self.maps = {}, {}

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        j = strategy.experience.current_experience
        self.scores.setdefault(j, []).append(strategy.mb_image_score.cpu().numpy())
        self.maps.setdefault(j, []).append(strategy.mb_anomaly_map.cpu().numpy())

    def of(self, j: int) -> np.ndarray:
        return np.concatenate(self.maps[j])


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    from cl_bench.data import build_benchmark, ensure_synthetic

    root = ensure_synthetic(tmp_path_factory.mktemp("syn"), n_categories=3, n_train=4,
                            n_test=4, size=32, seed=0)
    return build_benchmark(root, image_size=32)


def _strategy(plugin: RoutingPlugin, seed: int = 0) -> tuple[DistillationStrategy, Scores]:
    torch.manual_seed(seed)
    detector = build_detector("stpm", weights="none")
    scores = Scores()
    strategy = DistillationStrategy(
        model=detector, optimizer=torch.optim.Adam(detector.parameters(), lr=1e-2),
        train_mb_size=4, train_epochs=1, eval_mb_size=16, plugins=[plugin, scores])
    return strategy, scores


def _train(strategy, tasks, upto: int) -> None:
    for i, experience in enumerate(tasks.train_stream):
        if i > upto:
            break
        torch.manual_seed(100 + i)
        strategy.train(experience)


def test_each_image_is_scored_by_its_own_tasks_expert(tasks) -> None:
    """After the second task, task 0's test images get exactly the maps they got right after
    task 0 (no forgetting when routing is right), and the task-ID counts say all were right."""
    plugin = RoutingPlugin("prototype_cosine")
    strategy, scores = _strategy(plugin)
    _train(strategy, tasks, 0)
    strategy.eval([tasks.test_stream[0]])
    after_first = scores.of(0)
    _train_one(strategy, tasks, 1)
    strategy.eval(list(tasks.test_stream)[:2])
    np.testing.assert_array_equal(scores.of(0), after_first)
    per_task, pooled = plugin.eval_metrics()
    assert per_task[0]["task_id_acc_good"] == 1.0 and per_task[0]["task_id_acc_defective"] == 1.0
    assert pooled["task_id_acc"] == 1.0
    assert per_task[1]["memory_mb"] > 0
    assert pooled["memory_mb"] == pytest.approx(per_task[0]["memory_mb"]
                                                + per_task[1]["memory_mb"])
    # the current students (trained on task 1) would have scored task 0 differently
    plugin.experts[0] = {k: v.clone() for k, v in plugin.experts[1].items()}
    plugin._loaded = None
    strategy.eval([tasks.test_stream[0]])
    assert not np.array_equal(scores.of(0), after_first)


def _train_one(strategy, tasks, i: int) -> None:
    torch.manual_seed(100 + i)
    strategy.train(tasks.train_stream[i])


def test_one_teacher_pass_per_batch_serves_routing_and_scoring(tasks) -> None:
    plugin = RoutingPlugin("prototype_cosine")
    strategy, _ = _strategy(plugin)
    _train(strategy, tasks, 1)
    calls = []
    teacher = strategy.detector.teacher
    original = teacher.forward
    teacher.forward = lambda x: calls.append(x.shape[0]) or original(x)
    strategy.eval([tasks.test_stream[0]])  # 4 images, one batch, no run cache attached
    assert calls == [4]


def test_state_round_trip_resumes_identically(tasks) -> None:
    """Train 2 tasks, save the plugin's state (weights_only), restore into a fresh strategy,
    train task 3 in both: identical maps on every task."""
    plugin = RoutingPlugin("prototype_cosine", expert_dtype="float16")
    strategy, scores = _strategy(plugin)
    _train(strategy, tasks, 1)
    buffer = io.BytesIO()
    torch.save({"plugin": plugin.state_dict(), "model": strategy.model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    stored = [v for v in saved["plugin"]["experts"][0].values() if v.is_floating_point()]
    assert stored and all(v.dtype == torch.float16 for v in stored)

    restored = RoutingPlugin("prototype_cosine", expert_dtype="float16")
    strategy2, scores2 = _strategy(restored)  # the same (random) teacher, as a resume builds
    restored.load_state_dict(saved["plugin"], strategy2)
    strategy2.model.load_state_dict(saved["model"])
    for s in (strategy, strategy2):
        _train_one(s, tasks, 2)
        s.eval(list(tasks.test_stream))
    for j in range(3):
        np.testing.assert_array_equal(scores2.of(j), scores.of(j))
    assert restored.eval_metrics() == plugin.eval_metrics()
    with pytest.raises(ValueError, match="init='warm'"):
        RoutingPlugin("prototype_cosine", init="fresh",
                      expert_dtype="float16").load_state_dict(saved["plugin"])


def test_fresh_starts_every_task_from_the_untrained_students(tasks) -> None:
    warm, fresh = RoutingPlugin(init="warm"), RoutingPlugin(init="fresh")
    (sw, _), (sf, _) = _strategy(warm), _strategy(fresh)
    _train(sw, tasks, 1)
    _train(sf, tasks, 1)
    # task 0 trained alike; task 1 starts from expert 0 (warm) or from the untrained students
    for key, value in warm.experts[0].items():
        torch.testing.assert_close(fresh.experts[0][key], value, rtol=0, atol=0)
    differs = [k for k, v in warm.experts[1].items() if v.is_floating_point()
               and not torch.equal(v, fresh.experts[1][k])]
    assert differs
    # fresh == one detector trained on task 1 alone from the same initial weights
    alone = RoutingPlugin(init="warm")
    sa, _ = _strategy(alone)
    _train_one(sa, tasks, 1)
    for key, value in alone.experts[0].items():
        torch.testing.assert_close(fresh.experts[1][key], value, rtol=0, atol=0)


def _expert_scores(strategy, plugin: RoutingPlugin, images: torch.Tensor) -> torch.Tensor:
    """``(B, tasks)`` image score of every image under every expert, computed directly."""
    import copy

    scorer = copy.deepcopy(strategy.model).eval()
    columns = []
    with torch.no_grad():
        for expert in plugin.experts:
            scorer.load_state_dict(expert)
            maps = scorer.anomaly_map_from_output(scorer(images), tuple(images.shape[-2:]))
            columns.append(scorer.image_scores(maps.float()))
    return torch.stack(columns, dim=1)


def test_top_k_keeps_the_lowest_score_of_the_k_nearest_experts(tasks) -> None:
    """top_k 1 scores each image with its nearest task's expert; top_k 2 with the two nearest,
    keeping the lower image score (and that expert's map): never above top_k 1, below it
    somewhere, and exactly the smaller of the two experts' own scores."""
    plugin = RoutingPlugin("prototype_cosine")
    strategy, scores = _strategy(plugin)
    _train(strategy, tasks, 2)
    test = list(tasks.test_stream)
    strategy.eval(test)
    one = {j: np.concatenate(scores.scores[j]) for j in range(3)}
    one_maps = {j: scores.of(j) for j in range(3)}
    plugin.top_k = 2
    strategy.eval(test)
    two = {j: np.concatenate(scores.scores[j]) for j in range(3)}
    lower = 0
    for j, experience in enumerate(test):
        images = torch.stack([experience.dataset[i][0] for i in range(len(experience.dataset))])
        direct = _expert_scores(strategy, plugin, images)
        teacher = strategy.detector.teacher(images)
        router = plugin.router
        distances = router.task_distances(router.distances(pooled_descriptor(teacher)))
        nearest = distances.topk(2, dim=1, largest=False).indices
        np.testing.assert_allclose(one[j], direct.gather(1, nearest[:, :1])[:, 0].numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(two[j], direct.gather(1, nearest).amin(dim=1).numpy(),
                                   rtol=1e-5, atol=1e-6)
        # an expert scores a different subset of the batch with k = 2: float noise ~1e-7
        assert np.all(two[j] <= one[j] + 1e-5)
        lower += int(np.sum(two[j] < one[j] - 1e-5))
        kept = np.flatnonzero(np.abs(two[j] - one[j]) <= 1e-5)  # the nearest expert won
        np.testing.assert_allclose(scores.of(j)[kept], one_maps[j][kept], rtol=1e-5, atol=1e-6)
    assert lower > 0


def test_top_k_one_is_the_default_and_bad_values_fail() -> None:
    assert RoutingPlugin().top_k == 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="top_k"):
            RoutingPlugin(top_k=bad)
