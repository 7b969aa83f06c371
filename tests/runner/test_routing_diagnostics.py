"""Routing's misrouting diagnostics through the runner: the confusion matrix per step (its rows
sum to the test-set sizes), metrics of correctly routed and misrouted images apart, and the
key-distance margin; a router forced to misroute shows up in the misrouted metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment
from strategies.continual.routing.diagnostics import distance_margins
from strategies.continual.routing.router import TaskRouter

TEST_IMAGES = 4  # tiny_raw: 4 test images per synthetic task
T = 3


def _run(tmp_path):
    raw = tiny_raw(**{"strategy.name": "routing", "model.weights": "imagenet",
                      "data.synthetic.categories": T})
    return run_experiment(validate(raw), out_root=tmp_path, log=lambda _: None, progress=False)


def _final(run) -> pd.Series:
    records = pd.read_csv(run / "records.csv")
    rows = records[(records["step"] == T - 1) & (records["eval_index"] >= 0)]
    return rows.set_index(["eval_index", "metric"])["value"]


def _same(final: pd.Series, task: int, group_metric: str, metric: str) -> bool:
    """A group's metric equals the task's own (same AUROC, computed by another library)."""
    return final[(task, group_metric)] == pytest.approx(final[(task, metric)], abs=1e-9)


def _confusions(run) -> list[pd.DataFrame]:
    files = sorted((run / "routing").glob("stpm__seed0__confusion_step*.csv"))
    assert [f.name[-6:-4] for f in files] == ["00", "01", "02"]
    return [pd.read_csv(f, index_col="true_task") for f in files]


def test_confusion_rows_sum_to_test_sets_and_right_routing_matches(tmp_path,
                                                                   synthetic_cache) -> None:
    run = _run(tmp_path)
    for step, matrix in enumerate(_confusions(run)):
        assert matrix.shape == (T, step + 1)  # every evaluated task x the experts so far
        assert (matrix.sum(axis=1) == TEST_IMAGES).all()
        seen = matrix.to_numpy()[: step + 1]
        np.testing.assert_array_equal(seen, TEST_IMAGES * np.eye(step + 1))  # router right
    final = _final(run)
    for j in range(T):  # every image routed right: that group is the whole task
        assert _same(final, j, "image_auroc_routed_right", "image_auroc")
        assert _same(final, j, "pixel_auroc_routed_right", "pixel_auroc")
        assert math.isnan(final[(j, "image_auroc_misrouted")])
        assert math.isnan(final[(j, "pixel_auroc_misrouted")])
        assert final[(j, "routing_margin_min")] > 0
        assert final[(j, "routing_margin_low_frac")] == 0.0


def test_forced_misroute_shows_in_misrouted_metrics(tmp_path, synthetic_cache,
                                                    monkeypatch) -> None:
    true_distances = TaskRouter.distances

    def always_first(self, descriptors):  # expert 0 nearest for every image
        d = true_distances(self, descriptors)
        d[:, 0] = d.min(dim=1).values - 1.0
        return d

    monkeypatch.setattr(TaskRouter, "distances", always_first)
    run = _run(tmp_path)
    last = _confusions(run)[-1].to_numpy()
    np.testing.assert_array_equal(last[:, 0], [TEST_IMAGES] * T)
    assert last[:, 1:].sum() == 0
    final = _final(run)
    for j in (1, 2):  # all misrouted: the misrouted group is the whole task
        assert final[(j, "task_id_acc")] == 0.0
        assert _same(final, j, "image_auroc_misrouted", "image_auroc")
        assert _same(final, j, "pixel_auroc_misrouted", "pixel_auroc")
        assert math.isnan(final[(j, "image_auroc_routed_right")])
        assert math.isnan(final[(j, "pixel_auroc_routed_right")])
    assert _same(final, 0, "image_auroc_routed_right", "image_auroc")


def test_distance_margins() -> None:
    margin, ratio = distance_margins(torch.tensor([[1.0, 3.0, 2.0], [4.0, 4.0, 5.0]]))
    np.testing.assert_allclose(margin.numpy(), [1.0, 0.0])
    np.testing.assert_allclose(ratio.numpy(), [0.5, 0.0])
    margin, _ = distance_margins(torch.tensor([[1.0], [2.0]]))
    assert torch.isnan(margin).all()  # one expert: no second-best key


def test_diagnostics_judge_a_category_column_by_the_task_that_holds_it() -> None:
    """Columns 0 and 1 (two categories) belong to task 0, column 2 to task 1: an image of
    column 1 routed to expert 0 is routed right, one of column 2 routed to expert 0 is not."""
    import torch

    from strategies.continual.routing.diagnostics import RoutingDiagnostics

    diagnostics = RoutingDiagnostics()
    distances = torch.tensor([[0.1, 0.9], [0.2, 0.8]])
    diagnostics.add_routing(1, 0, torch.tensor([0, 0]), distances)
    diagnostics.add_routing(2, 1, torch.tensor([0, 1]), distances)
    diagnostics.add_outputs(1, torch.tensor([0.1, 0.9]), torch.tensor([0, 1]),
                            torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2))
    diagnostics.add_outputs(2, torch.tensor([0.1, 0.9]), torch.tensor([0, 1]),
                            torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2))
    np.testing.assert_array_equal(diagnostics.confusion(diagnostics.n_rows, 2),
                                  [[0, 0], [2, 0], [1, 1]])
    metrics = diagnostics.task_metrics(2)
    assert metrics[1]["image_auroc_routed_right"] == 1.0  # both images, both classes
    assert np.isnan(metrics[1]["image_auroc_misrouted"])
    assert np.isnan(metrics[2]["image_auroc_routed_right"])  # one image per group: one class
