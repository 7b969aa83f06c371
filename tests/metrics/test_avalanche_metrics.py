"""Avalanche plugin metrics: names, values, stream means and R read back, in a real tiny run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from cl_bench.errors import RunError
from cl_bench.metrics import TaskEvaluator
from cl_bench.metrics.avalanche import (
    AUPRO,
    AnomalyMetrics,
    anomaly_metrics,
    read_experience_metrics,
    result_matrix_from_metrics,
)

SIZE = 8


def experience_data(j: int, n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images whose first channel is bright on the defect; half of them defective."""
    g = torch.Generator().manual_seed(j)
    images = torch.rand(n, 3, SIZE, SIZE, generator=g)
    masks = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(1, n, 2):
        y, x = (torch.randint(0, SIZE - 3, (2,), generator=g)).tolist()
        masks[i, :, y:y + 3, x:x + 2] = 1.0
    images[:, :1] += masks * (0.3 + 0.2 * j)
    labels = (masks.flatten(1).amax(1) > 0).long()
    return images, labels, masks


class FakeStrategy(SimpleNamespace):
    """The attributes the plugin and Avalanche's get_metric_name read."""


def fake_strategy(j: int) -> FakeStrategy:
    exp = SimpleNamespace(current_experience=j, origin_stream=SimpleNamespace(name="test"),
                          category=f"cat{j}")
    return FakeStrategy(experience=exp, is_eval=True, clock=SimpleNamespace(train_iterations=7))


def test_plugin_emits_avalanche_names_and_the_evaluator_values() -> None:
    plugin = anomaly_metrics(image_ap=True, pixel_ap=True)[0]
    plugin.before_eval(fake_strategy(0))
    expected = {}
    for j in range(2):
        strategy = fake_strategy(j)
        plugin.before_eval_exp(strategy)
        images, labels, masks = experience_data(j)
        reference = TaskEvaluator()
        for lo in (0, 4):
            strategy.mb_anomaly_map = images[lo:lo + 4, :1]
            strategy.mb_image_score = images[lo:lo + 4, 0].flatten(1).amax(1)
            strategy.mb_y, strategy.mb_mask = labels[lo:lo + 4], masks[lo:lo + 4]
            plugin.after_eval_iteration(strategy)
            reference.update(strategy.mb_anomaly_map, strategy.mb_mask,
                             strategy.mb_image_score, strategy.mb_y)
        values = plugin.after_eval_exp(strategy)
        expected[j] = reference.compute()
        names = {v.name: v.value for v in values}
        assert names[f"ImageAUROC_Exp/eval_phase/test_stream/Exp{j:03d}"] == (
            expected[j]["image_auroc"])
        assert names[f"AUPRO_Exp/eval_phase/test_stream/Exp{j:03d}"] == expected[j]["au_pro"]
        assert len(names) == 5 and all(v.x_plot == 7 for v in values)
        assert read_experience_metrics(names, j) == expected[j]
    stream = {v.name: v.value for v in plugin.after_eval(fake_strategy(1))}
    assert stream["PixelAUROC_Stream/eval_phase/test_stream"] == pytest.approx(
        (expected[0]["pixel_auroc"] + expected[1]["pixel_auroc"]) / 2)


def test_missing_strategy_attribute_is_a_clear_error() -> None:
    plugin = AUPRO()
    strategy = fake_strategy(0)
    plugin.before_eval_exp(strategy)
    strategy.mb_anomaly_map = torch.zeros(2, 1, 4, 4)
    strategy.mb_image_score, strategy.mb_y, strategy.mb_mask = torch.zeros(2), torch.zeros(2), None
    with pytest.raises(RunError, match="mb_mask"):
        plugin.after_eval_iteration(strategy)


def test_result_matrix_aligns_rows_by_evaluation() -> None:
    name = "ImageAUROC_Exp/eval_phase/test_stream/Exp{:03d}"
    all_metrics = {name.format(0): ([0, 10, 20], [0.5, 0.9, 0.8]),
                   name.format(1): ([0, 20], [0.55, 0.95]),  # not evaluated at x = 10
                   "PixelAUROC_Exp/eval_phase/test_stream/Exp000": ([0], [0.1])}
    R = result_matrix_from_metrics(all_metrics, "image_auroc", 2)
    np.testing.assert_array_equal(R, [[0.5, 0.55], [0.9, np.nan], [0.8, 0.95]])
    with pytest.raises(ValueError, match="no 'AUPRO_Exp"):
        result_matrix_from_metrics(all_metrics, "au_pro", 2)


def test_unknown_metric_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown or no anomaly metric"):
        AnomalyMetrics(["pixel_aucroc"])


def test_real_avalanche_run_reads_back_R(tmp_path) -> None:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate
    from torch.utils.data import TensorDataset

    class MapModel(nn.Module):
        """Anomaly map = a learnable scale times the first channel."""

        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * self.scale

    class MapStrategy(SupervisedTemplate):
        def forward(self):
            out = self.model(self.mb_x)
            if not self.is_training:
                self.mb_anomaly_map = out
                self.mb_image_score = out.flatten(1).amax(1)
                self.mb_mask = self.mbatch[2]
            return out

        def criterion(self):
            return (self.mb_output * 0).sum()

    def dataset(j: int, good_only: bool) -> AvalancheDataset:
        images, labels, masks = experience_data(j)
        keep = labels == 0 if good_only else slice(None)
        return AvalancheDataset([TensorDataset(images[keep], labels[keep], masks[keep])])

    def run_two_tasks(evaluator: EvaluationPlugin, bm) -> None:
        model = MapModel()
        strategy = MapStrategy(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0),
                               train_mb_size=4, eval_mb_size=4, train_epochs=1,
                               evaluator=evaluator, device="cpu")
        strategy.eval(bm.test_stream)  # untrained model: row 0
        for exp in bm.train_stream:
            strategy.train(exp)
            strategy.eval(bm.test_stream)

    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        evaluator = EvaluationPlugin(*anomaly_metrics(), loggers=[TextLogger(fh)],
                                     strict_checks=False)
        run_two_tasks(evaluator, benchmark_from_datasets(
            train=[dataset(j, True) for j in range(2)],
            test=[dataset(j, False) for j in range(2)]))
    assert "AUPRO_Exp/eval_phase/test_stream/Exp001" in log.read_text()  # the logger shows it

    rows = result_matrix_from_metrics(evaluator.get_all_metrics(), "au_pro", 2)
    assert rows.shape == (3, 2)
    for j in range(2):
        images, labels, masks = experience_data(j)
        reference = TaskEvaluator()
        reference.update(images[:, :1], masks, images[:, 0].flatten(1).amax(1), labels)
        assert rows[:, j] == pytest.approx([reference.compute()["au_pro"]] * 3, rel=1e-12)
    last = evaluator.get_last_metrics()
    assert not math.isnan(last["ImageAUROC_Stream/eval_phase/test_stream"])
