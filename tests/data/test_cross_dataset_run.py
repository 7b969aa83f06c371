"""A whole run over tasks of two datasets (MVTec layout, then VisA): records, maps and report keep
the ``mvtec/...`` and ``visa/...`` task names, and no ``/`` in a task name makes a folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from data_helpers import make_category
from layout_fixtures import make_visa

from cl_bench.config import validate
from cl_bench.report.build import write_report
from cl_bench.report.load import load_runs, read_map_file
from cl_bench.run.experiment import run_experiment

VISA = {"candle": {"train": ["0000", "0001", "0002", "0003"], "test_normal": ["0004", "0005"],
                   "test_anomaly": ["000", "001"]}}
TASKS = ["mvtec/bottle", "mvtec/cable", "visa/candle"]


def test_cross_dataset_run_records_maps_and_report(tmp_path):
    mvtec = tmp_path / "mvtec"
    make_category(mvtec, "bottle", n_train=4, size=(40, 40), seed=1)
    make_category(mvtec, "cable", n_train=4, size=(40, 40), seed=2)
    visa = make_visa(tmp_path / "visa", VISA, size=(40, 48))
    cfg = validate({
        "experiment": "cross",
        "data": {"source": "folder", "image_size": 32,
                 "sources": [{"name": "mvtec", "root": str(mvtec), "format": "mvtec"},
                             {"name": "visa", "root": str(visa)}]},
        "model": {"methods": ["stpm"], "backbone": "efficientnet_lite0", "weights": "none"},
        "train": {"epochs": 1, "batch_size": 4},
        "eval": {"batch_size": 8, "saved_maps_per_task": 2},
    })
    run_dir = run_experiment(cfg, out_root=tmp_path / "results", log=lambda _: None,
                             progress=False)

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["categories"] == TASKS
    assert manifest["data_root"] == f"mvtec={mvtec}; visa={visa}"
    records = pd.read_csv(run_dir / "records.csv")
    per_task = records[records["eval_task"] != "pooled"]
    assert set(per_task["eval_task"]) == set(TASKS)
    assert sorted(set(records.loc[records["step"] >= 0, "train_task"])) == TASKS
    order = per_task.drop_duplicates("eval_index").sort_values("eval_index")["eval_task"]
    assert list(order) == TASKS

    # task names never become paths: no folder named after a source anywhere in the run
    folders = {p.name for p in run_dir.rglob("*") if p.is_dir()}
    assert not folders & {"mvtec", "visa", "bottle", "cable", "candle"}, folders
    maps = read_map_file(run_dir / "maps" / "stpm__naive__seed0.npz")
    assert set(maps.tasks) == set(TASKS)

    loaded = load_runs(run_dir)
    assert set(loaded["eval_task"]) == {*TASKS, "pooled"}
    report = write_report(run_dir, tmp_path / "report")
    text = report.markdown.read_text()
    assert all(task in text for task in TASKS)
    matrix = next(p for p in report.table_files if p.name.startswith("R_image_auroc__stpm")
                  and p.suffix == ".csv")
    assert all(task in matrix.read_text() for task in TASKS)
    assert not any(part in {"mvtec", "visa"} for f in report.table_files for part in f.parts)
    assert np.isfinite(per_task["value"]).any()
