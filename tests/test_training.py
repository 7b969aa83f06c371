"""``cl-bench train-one`` trains with a run's loop: its detector is a one-task run's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cl_bench.commands.train_one import predict
from cl_bench.config import validate
from cl_bench.data import MVTecDataset, ensure_synthetic
from cl_bench.run.experiment import run_experiment
from cl_bench.training import (
    image_and_pixel_auroc,
    seed_for_build,
    seed_for_training,
    train_on_dataset,
)
from strategies.detectors import build_detector


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_one_measures_what_a_one_task_run_measures(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path / "cache"))
    root = ensure_synthetic(n_categories=1, n_train=6, n_test=6, size=32, seed=0)
    cfg = validate({
        "experiment": "one", "data": {"source": "folder", "root": str(root), "image_size": 32,
                                      "cache_mb": 0},
        "model": {"methods": ["stpm"], "weights": "none", "backbone": "resnet18"},
        "train": {"epochs": 2, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 0.1}},
        "eval": {"batch_size": 4, "saved_maps_per_task": 0}, "seeds": [3], "device": "cpu",
        "num_threads": 1})
    run_dir = run_experiment(cfg, out_root=tmp_path / "out", log=lambda _: None, progress=False)
    records = pd.read_csv(run_dir / "records.csv")
    step0 = records[(records["step"] == 0) & (records["eval_index"] == 0)]
    expected = step0.set_index("metric")["value"]

    (category,) = cfg.data.categories or [p.name for p in root.iterdir() if p.is_dir()]
    train = MVTecDataset(root, category, "train", 32)
    test = MVTecDataset(root, category, "test", 32)
    settings = cfg.train.for_method("stpm")
    seed_for_build(3)  # as train-one does
    detector = build_detector("stpm", "resnet18", "none")
    seed_for_training(3)
    train_on_dataset(detector, train, settings, "cpu")
    scores, maps = predict(detector, test, 4, "cpu")["map"]
    labels = np.array(test.labels)
    masks = np.stack([test[i][2][0].numpy() for i in range(len(test))])
    image, pixel = image_and_pixel_auroc(scores, maps, labels, masks)
    assert pixel == pytest.approx(expected["pixel_auroc"], rel=1e-9)
    assert image == pytest.approx(expected["image_auroc"], rel=1e-9)
    assert 0.0 < pixel < 1.0  # a value that tells models apart, not a saturated one
