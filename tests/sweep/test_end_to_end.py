"""Real tiny sweeps through the runner: local (in-process and worker processes); the Ray backend
on a cluster of several nodes is in test_ray_cluster.py.

Five cells: STPM x seeds {0, 1} x orders {alphabetical, reversed}, plus one cell that names a
category the data folder lacks, which only the run can find out (the deliberately failing
cell). Records of
the same cell are compared across backends for exact equality: the runs are deterministic
(seeded per step, one torch thread, same machine), so any difference is a bug.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cl_bench.report.build import compute
from cl_bench.sweep import run_sweep, sweep_from_dict
from cl_bench.sweep.driver import cell_run_dirs

pytestmark = pytest.mark.slow

SWEEP = {
    "experiment": "e2e",
    "data": {"synthetic": {"categories": 2, "train": 4, "test": 4, "size": 32},
             "image_size": 32, "cache_mb": 16},
    "model": {"methods": ["stpm"], "backbone": "efficientnet_lite0", "weights": "none"},
    "train": {"epochs": 1, "batch_size": 4},
    "eval": {"batch_size": 4, "saved_maps_per_task": 1},
    "num_threads": 1,
    "device": "cpu",
    "grid": {"seeds": [0, 1], "data.order": ["alphabetical", "reversed"],
             "data.categories": [None, ["no_such_category"]]},
    "exclude": [{"data.categories": ["no_such_category"], "seeds": 1},
                {"data.categories": ["no_such_category"], "data.order": "reversed"}],
}


def make_sweep(*overrides: str):
    return sweep_from_dict(json.loads(json.dumps(SWEEP)), "e2e.yaml", list(overrides))


def records(experiment_dir: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str) for p in sorted(experiment_dir.glob("*/records.csv"))]
    return pd.concat(frames).sort_values(["run_id", "step", "eval_task", "metric"]).reset_index(
        drop=True)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    lines: list[str] = []
    # the report's figures take tens of seconds; test_driver checks that the sweep builds it
    outcome = run_sweep(make_sweep(), out, backend="local", report=False, log=lines.append)
    assert sorted(r.status for r in outcome.results.values()) == ["complete"] * 4 + ["failed"]
    return out / "e2e"


def test_local_sweep_records_orders_failures_and_report(local_sweep: Path) -> None:
    status = json.loads((local_sweep / "sweep.json").read_text())
    assert status["counts"] == {"complete": 4, "skipped": 0, "failed": 1, "pending": 0}
    (failed,) = [c for c in status["cells"] if c["status"] == "failed"]
    assert failed["values"]["data.categories"] == ["no_such_category"]
    assert failed["error"].startswith("DataError: category 'no_such_category' not found")
    # a data error is found before the run folder is made: no folder left marked 'failed'
    assert not (local_sweep / failed["run_id"]).exists()

    df = records(local_sweep)
    assert set(df["order"]) == {"alphabetical", "reversed"}
    first = df[(df["step"] == "0")].groupby("order")["train_task"].first()
    assert first["alphabetical"] != first["reversed"]  # the reversed order starts elsewhere
    assert sorted(set(df["seed"])) == ["0", "1"]

    # the report aggregates the sweep's cells over seeds and orders: one mean of 4 runs
    summary = compute(cell_run_dirs(make_sweep(), local_sweep)).summary
    stpm = summary[(summary["method"] == "stpm") & (summary["strategy"] == "naive")]
    acc = stpm[(stpm["quantity"] == "acc") & (stpm["metric"] == "pixel_auroc")]
    assert list(acc["count"]) == [4] and stpm["count"].max() == 4
    assert set(summary["method"]) == {"stpm"}


def test_restart_skips_complete_cells_and_retries_the_failed_one(local_sweep: Path) -> None:
    before = records(local_sweep)
    outcome = run_sweep(make_sweep(), local_sweep.parent, backend="local", report=False,
                        log=lambda _: None)
    assert sorted(r.status for r in outcome.results.values()) == ["failed"] + ["skipped"] * 4
    pd.testing.assert_frame_equal(records(local_sweep), before)


def test_worker_processes_give_the_same_records(local_sweep: Path, tmp_path: Path) -> None:
    outcome = run_sweep(make_sweep("grid.data.categories=[null]", "grid.seeds=[1]"), tmp_path,
                        backend="local", jobs=2, threads=1, report=False, log=lambda _: None)
    assert [r.status for r in outcome.results.values()] == ["complete"] * 2
    expected = records(local_sweep)
    expected = expected[expected["seed"] == "1"]
    pd.testing.assert_frame_equal(records(tmp_path / "e2e"), expected.reset_index(drop=True))
