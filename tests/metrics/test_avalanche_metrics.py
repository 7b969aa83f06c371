"""Avalanche plugin metrics: names, values, stream means and R read back, in a real tiny run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from cl_bench.errors import RunError
from cl_bench.metrics import TaskEvaluator, UndefinedMetricWarning, au_pro
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


def _feed(plugin: AnomalyMetrics, j: int, images, labels, masks) -> dict:
    strategy = fake_strategy(j)
    plugin.before_eval_exp(strategy)
    strategy.mb_anomaly_map = images[:, :1]
    strategy.mb_image_score = images[:, 0].flatten(1).amax(1)
    strategy.mb_y, strategy.mb_mask = labels, masks
    plugin.after_eval_iteration(strategy)
    return {v.name: v.value for v in plugin.after_eval_exp(strategy)}


def test_plugin_uses_its_fpr_limit() -> None:
    images, labels, masks = experience_data(1)
    values = {}
    for limit in (0.05, 0.3):
        plugin = AUPRO(fpr_limit=limit)
        plugin.before_eval(fake_strategy(1))
        values[limit] = _feed(plugin, 1, images, labels, masks)[
            "AUPRO_Exp/eval_phase/test_stream/Exp001"]
        assert values[limit] == pytest.approx(au_pro(images[:, 0].numpy(), masks[:, 0].numpy(),
                                                     fpr_limit=limit), rel=1e-9)
    assert abs(values[0.05] - values[0.3]) > 0.01
    plugin = anomaly_metrics(fpr_limit=0.05)[0]
    plugin.before_eval(fake_strategy(1))
    assert _feed(plugin, 1, images, labels, masks)[
        "AUPRO_Exp/eval_phase/test_stream/Exp001"] == pytest.approx(values[0.05], rel=1e-12)


def test_stream_mean_leaves_nan_experiences_out() -> None:
    plugin = anomaly_metrics()[0]
    plugin.before_eval(fake_strategy(0))
    images, labels, masks = experience_data(0)
    first = _feed(plugin, 0, images, labels, masks)
    good = labels == 0  # an experience without defects: every metric is undefined (NaN)
    with pytest.warns(UndefinedMetricWarning):
        second = _feed(plugin, 1, images[good], labels[good], masks[good])
    assert math.isnan(second["ImageAUROC_Exp/eval_phase/test_stream/Exp001"])
    stream = {v.name: v.value for v in plugin.after_eval(fake_strategy(1))}
    for name in ("ImageAUROC", "PixelAUROC", "AUPRO"):
        assert stream[f"{name}_Stream/eval_phase/test_stream"] == pytest.approx(
            first[f"{name}_Exp/eval_phase/test_stream/Exp000"]), name


def test_real_avalanche_run_that_learns_reads_back_R(tmp_path) -> None:
    """A real Avalanche run (SupervisedTemplate, EvaluationPlugin) of a tiny detector that
    learns: its centre moves towards the mean of the good training images, so the anomaly map,
    and with it every row of R, changes from step to step. R read back from Avalanche's metric
    values equals the metrics of the model's state at each evaluation."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate
    from torch.utils.data import TensorDataset

    class CenterModel(nn.Module):
        """Anomaly map = squared distance of each pixel's colour to a learnable centre."""

        def __init__(self) -> None:
            super().__init__()
            self.center = nn.Parameter(torch.zeros(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return anomaly_map(x, self.center)

    def anomaly_map(x: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        return ((x - center[None, :, None, None]) ** 2).sum(1, keepdim=True)

    class MapStrategy(SupervisedTemplate):
        def forward(self):
            out = self.model(self.mb_x)
            if not self.is_training:
                self.mb_anomaly_map = out
                self.mb_image_score = out.flatten(1).amax(1)
                self.mb_mask = self.mbatch[2]
            return out

        def criterion(self):
            return self.mb_output.mean()  # the good images' distance to the centre

    def dataset(j: int, good_only: bool) -> AvalancheDataset:
        images, labels, masks = experience_data(j)
        images[:, 1] += 0.8 * j  # each task has its own colour of normal
        keep = labels == 0 if good_only else slice(None)
        return AvalancheDataset([TensorDataset(images[keep], labels[keep], masks[keep])])

    bm = benchmark_from_datasets(train=[dataset(j, True) for j in range(2)],
                                 test=[dataset(j, False) for j in range(2)])
    log = tmp_path / "log.txt"
    centers = []
    with log.open("w") as fh:
        evaluator = EvaluationPlugin(*anomaly_metrics(), loggers=[TextLogger(fh)],
                                     strict_checks=False)
        model = CenterModel()
        strategy = MapStrategy(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
                               train_mb_size=4, eval_mb_size=4, train_epochs=4,
                               evaluator=evaluator, device="cpu")
        strategy.eval(bm.test_stream)  # untrained model: row 0
        centers.append(model.center.detach().clone())
        for exp in bm.train_stream:
            strategy.train(exp)
            strategy.eval(bm.test_stream)
            centers.append(model.center.detach().clone())
    assert "AUPRO_Exp/eval_phase/test_stream/Exp001" in log.read_text()  # the logger shows it

    for metric in ("au_pro", "pixel_auroc"):
        rows = result_matrix_from_metrics(evaluator.get_all_metrics(), metric, 2)
        assert rows.shape == (3, 2)
        for i, center in enumerate(centers):
            for j in range(2):
                images = bm.test_stream[j].dataset
                x = torch.stack([images[k][0] for k in range(len(images))])
                labels = torch.tensor([int(images[k][1]) for k in range(len(images))])
                masks = torch.stack([images[k][2] for k in range(len(images))])
                maps = anomaly_map(x, center)
                reference = TaskEvaluator()
                reference.update(maps, masks, maps.flatten(1).amax(1), labels)
                assert rows[i, j] == pytest.approx(reference.compute()[metric], rel=1e-9)
        # the model learnt: every step changed the metrics of both tasks
        assert np.all(np.abs(np.diff(rows, axis=0)) > 1e-3), (metric, rows)
    last = evaluator.get_last_metrics()
    assert not math.isnan(last["ImageAUROC_Stream/eval_phase/test_stream"])
