"""The routing strategy through the runner: its own records, no forgetting when the router is
right, task-ID records, and a resumed run identical to an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


def _raw(strategy: str, **overrides) -> dict:
    # ImageNet teacher (routing needs meaningful features), 3 synthetic tasks at 32 px
    return tiny_raw(**{"strategy.name": strategy, "model.weights": "imagenet",
                       "data.synthetic.categories": 3, "train.epochs": 2, **overrides})


def _records(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "records.csv")


def _matrix(df: pd.DataFrame, metric: str, T: int) -> np.ndarray:
    rows = df[(df["metric"] == metric) & (df["eval_index"] >= 0) & (df["step"] >= 0)]
    R = np.full((T, T), np.nan)
    R[rows["step"], rows["eval_index"]] = rows["value"]
    return R


def test_routing_differs_from_naive_and_does_not_forget(tmp_path, synthetic_cache) -> None:
    routing = _records(run_experiment(validate(_raw("routing")), out_root=tmp_path / "r",
                                      log=lambda _: None, progress=False))
    naive = _records(run_experiment(validate(_raw("naive")), out_root=tmp_path / "n",
                                    log=lambda _: None, progress=False))
    T = 3
    pooled = routing[routing["eval_task"] == "pooled"].set_index(["step", "metric"])["value"]
    for step in range(T):  # the router is right on every seen test image, good and defective
        for metric in ("task_id_acc", "task_id_acc_good", "task_id_acc_defective"):
            assert pooled[(step, metric)] == 1.0
        assert pooled[(step, "memory_mb")] > 0
    assert pooled[(2, "memory_mb")] > pooled[(1, "memory_mb")] > pooled[(0, "memory_mb")]
    assert not (routing["task_aware"]).any()
    for metric in ("pixel_auroc", "image_auroc"):
        R = _matrix(routing, metric, T)
        forgetting = [np.nanmax(R[j:T - 1, j]) - R[T - 1, j] for j in range(T - 1)]
        assert max(forgetting) <= 1e-12, (metric, forgetting)  # each task keeps its expert
        # warm start: the first step trains exactly as naive does
        np.testing.assert_array_equal(R[0, 0], _matrix(naive, metric, T)[0, 0])
    R_naive = _matrix(naive, "pixel_auroc", T)
    R_routing = _matrix(routing, "pixel_auroc", T)
    assert not np.array_equal(R_naive[T - 1], R_routing[T - 1])  # naive's last row forgets
    assert set(naive["metric"]) & {"task_id_acc", "memory_mb"} == set()


def test_resume_after_each_step_gives_identical_records(tmp_path, synthetic_cache) -> None:
    """Pretend the run died after step 0 and after step 1: the experts and keys come back from
    the checkpoint (plugin state) and the records equal the uninterrupted run's."""
    raw = _raw("routing", **{"strategy.routing": {"expert_dtype": "float16"}})
    full = run_experiment(validate(raw), out_root=tmp_path / "full", log=lambda _: None,
                          progress=False)
    for done in (0, 1):
        copy = resume_cut_copy(full, tmp_path, "stpm/seed0", done)
        got = pd.read_csv(copy / "records.csv", dtype=str)
        want = pd.read_csv(full / "records.csv", dtype=str)
        pd.testing.assert_frame_equal(got, want)
