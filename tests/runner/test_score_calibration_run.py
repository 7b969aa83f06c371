"""Score calibration through the runner (strategy.routing / strategy.independent .calibration):
statistics from training images only, the paired uncalibrated records, ``none`` unchanged,
resume, and config validation."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from fault_helpers import cli
from PIL import Image
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.config import validate
from cl_bench.data.synthetic import synthesize
from cl_bench.run.experiment import run_experiment
from strategies.training.checkpoint import read_checkpoint


def _raw(strategy: str, root=None, **overrides) -> dict:
    """Three synthetic tasks with an ImageNet teacher; with ``root``, the folder set there."""
    raw = tiny_raw(**{"strategy.name": strategy, "model.weights": "imagenet",
                      "data.synthetic.categories": 3, "eval.saved_maps_per_task": 0,
                      **overrides})
    if root is not None:
        raw["data"] = {"source": "folder", "root": str(root), "image_size": 32}
    return raw


def _run(raw: dict, out):
    return run_experiment(validate(raw), out_root=out, log=lambda _: None, progress=False)


def _calibration_stats(run_dir, step: int) -> list:
    extra = read_checkpoint(run_dir / "checkpoints" / "stpm" / "seed0" / f"step{step:02d}.pt")
    states = [s for s in extra["extra"]["plugins"] if isinstance(s, dict) and "calibration" in s]
    return states[0]["calibration"]["stats"]


def test_statistics_come_from_training_images_only(tmp_path, synthetic_cache) -> None:
    """Every test image replaced by noise: the evaluation changes, the experts' calibration
    statistics (from held-out *training* images) do not, to the bit."""
    clean = synthesize(tmp_path / "clean", n_categories=2, n_train=5, n_test=4, size=32)
    poisoned = tmp_path / "poisoned"
    shutil.copytree(clean, poisoned)
    rng = np.random.default_rng(0)
    tests = sorted(poisoned.glob("*/test/*/*.png"))
    assert tests
    for path in tests:
        noise = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
    runs = {}
    for name, root in (("clean", clean), ("poisoned", poisoned)):
        raw = _raw("routing", root, **{"strategy.routing": {"calibration": "zscore"}})
        runs[name] = _run(raw, tmp_path / name / "out")
    for step in (0, 1):
        want = _calibration_stats(runs["clean"], step)
        assert len(want) == step + 1 and all(scale > 0 for _, scale in want)
        assert _calibration_stats(runs["poisoned"], step) == want
    records = {k: pd.read_csv(v / "records.csv") for k, v in runs.items()}
    auroc = {k: r.loc[r["metric"] == "pixel_auroc", "value"].to_numpy()
             for k, r in records.items()}
    assert not np.array_equal(auroc["clean"], auroc["poisoned"])  # the poison reached the eval


def test_routing_records_both_scores_and_resumes_identically(tmp_path, synthetic_cache) -> None:
    raw = _raw("routing", **{"strategy.routing": {"calibration": "zscore"}})
    full = _run(raw, tmp_path / "full")
    records = pd.read_csv(full / "records.csv")
    pooled = records[records["eval_task"] == "pooled"].set_index(["step", "metric"])["value"]
    for step in range(3):
        assert np.isfinite(pooled[(step, "image_auroc")])
        assert np.isfinite(pooled[(step, "image_auroc_uncalibrated")])
    copy = resume_cut_copy(full, tmp_path, "stpm/seed0", 1)
    pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str),
                                  pd.read_csv(full / "records.csv", dtype=str))


def test_independent_takes_the_option_and_none_trains_on_every_image(tmp_path,
                                                                     synthetic_cache) -> None:
    """``none`` (the default) trains task 0 on all its images, as naive does (step 0 records
    equal), and writes no uncalibrated metric; ``zscore`` holds images out (its step 0
    differs), records the raw AUROC next to the calibrated one, and leaves each task's own
    ranking unchanged (an affine map with a positive scale)."""
    def step0(df: pd.DataFrame) -> pd.Series:
        rows = df[(df["step"] == 0) & (df["eval_index"] == 0)]
        return rows.set_index("metric")["value"]

    naive = pd.read_csv(_run(_raw("naive"), tmp_path / "n") / "records.csv")
    none = pd.read_csv(_run(_raw("independent"), tmp_path / "i") / "records.csv")
    zscore = pd.read_csv(_run(_raw("independent", **{"strategy.independent": {
        "calibration": "zscore"}}), tmp_path / "z") / "records.csv")
    pd.testing.assert_series_equal(step0(none), step0(naive))
    assert "image_auroc_uncalibrated" not in set(none["metric"])
    assert not step0(zscore)[["pixel_auroc"]].equals(step0(naive)[["pixel_auroc"]])
    per_task = zscore[(zscore["eval_index"] >= 0) & (zscore["step"] >= 0)]
    wide = per_task.pivot_table(index=["step", "eval_index"], columns="metric", values="value")
    np.testing.assert_array_equal(wide["image_auroc"], wide["image_auroc_uncalibrated"])
    pooled = zscore[(zscore["eval_task"] == "pooled") & (zscore["step"] == 2)]
    assert set(pooled["metric"]) >= {"image_auroc", "image_auroc_uncalibrated"}


@pytest.mark.parametrize("strategy", ["routing", "independent"])
def test_crossfit_calibrates_the_very_experts_an_uncalibrated_run_trains(
        tmp_path, synthetic_cache, strategy) -> None:
    """With ``calibration_folds`` every expert trains on all its images and the fold copies
    run after it with the random state restored: the calibrated run's uncalibrated pooled
    AUROC equals the uncalibrated run's pooled AUROC at every step (the same experts), and
    the calibration changes the pooled ranking."""
    options = {"calibration": "image_zscore", "calibration_folds": 2}
    runs = {"none": _run(_raw(strategy), tmp_path / "none"),
            "cf": _run(_raw(strategy, **{f"strategy.{strategy}": options}), tmp_path / "cf")}
    for step in range(3):  # every step's trained students, to the bit
        states = [read_checkpoint(run / "checkpoints" / "stpm" / "seed0" / f"step{step:02d}.pt")
                  ["state_dict"] for run in runs.values()]
        assert states[0].keys() == states[1].keys()
        for key, value in states[0].items():
            assert torch.equal(value, states[1][key]), (step, key)
    none, crossfit = (pd.read_csv(run / "records.csv") for run in runs.values())

    def pooled(df: pd.DataFrame, metric: str) -> pd.Series:
        rows = df[(df["eval_task"] == "pooled") & (df["metric"] == metric) & (df["step"] >= 0)]
        return rows.set_index("step")["value"]

    pd.testing.assert_series_equal(pooled(crossfit, "image_auroc_uncalibrated"),
                                   pooled(none, "image_auroc"), check_names=False)
    assert not pooled(crossfit, "image_auroc").equals(pooled(none, "image_auroc"))


def test_crossfit_routing_resumes_identically(tmp_path, synthetic_cache) -> None:
    raw = _raw("routing", **{"strategy.routing": {"calibration": "quantile",
                                                  "calibration_folds": 2}})
    full = _run(raw, tmp_path / "full")
    assert len(_calibration_stats(full, 2)) == 3
    copy = resume_cut_copy(full, tmp_path, "stpm/seed0", 1)
    pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str),
                                  pd.read_csv(full / "records.csv", dtype=str))


@pytest.mark.parametrize(("key", "value", "said"), [
    ("strategy.routing.calibration", "minmax", "strategy.routing.calibration"),
    ("strategy.routing.calibration", "image_zscore", "set calibration_folds"),
    ("strategy.routing.calibration_folds", "1", "calibration_folds 1"),
    ("strategy.routing.calibration_holdout", "1.5", "strategy.routing.calibration_holdout"),
    ("strategy.independent.calibration", "bogus", "strategy.independent.calibration"),
])
def test_a_bad_calibration_option_is_a_config_error(capsys, tmp_path, synthetic_cache, key,
                                                     value, said) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_raw("routing")))
    status, out = cli(capsys, "run", str(path), "--set", f"{key}={value}", "--out",
                      str(tmp_path / "out"), "--no-report")
    assert status == 2 and "Traceback" not in out
    assert said in out
    assert not (tmp_path / "out").exists()


def test_independent_accepts_the_routing_option_keys() -> None:
    cfg = validate(_raw("independent", **{"strategy.independent": {
        "calibration": "quantile", "calibration_holdout": 0.3}}))
    assert cfg.strategy.options().calibration == "quantile"
    assert cfg.strategy.options().calibration_holdout == 0.3
