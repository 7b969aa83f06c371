"""PatchCore through ``cl-bench run`` on synthetic data: it learns, records its memory per task,
and an interrupted run resumes to identical records."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.cli import main
from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment


def _raw(**options) -> dict:
    # 64 px so that level 2 (stride 8) has 8 x 8 patches; ImageNet Lite0 weights ship offline
    return tiny_raw(**{"model.methods": ["patchcore"], "model.weights": "imagenet",
                       "model.options": {"patchcore": options},
                       "data.synthetic": {"categories": 3, "train": 8, "test": 8, "size": 64},
                       "data.image_size": 64, "train.epochs": 3})


def test_cl_bench_run_learns_and_records_memory(tmp_path, synthetic_cache, capsys) -> None:
    config = tmp_path / "patchcore.yaml"
    config.write_text(yaml.safe_dump(_raw()))
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    assert "learns without gradients" in capsys.readouterr().out
    run_dir = next((tmp_path / "out").glob("*/*"))
    records = pd.read_csv(run_dir / "records.csv")
    final = records[(records.step == 2) & (records.eval_index >= 0)]
    by_metric = final.groupby("metric").value.mean()
    assert by_metric["image_auroc"] > 0.5 and by_metric["pixel_auroc"] > 0.6
    untrained = records[(records.step == -1) & (records.metric == "image_auroc")]
    assert (untrained.value == 0.5).all()  # empty bank: a constant map
    manifest = json.loads((run_dir / "manifest.json").read_text())
    cell = manifest["cells"]["patchcore/seed0"]
    assert cell["learns_without_gradients"] is True and cell["trainable_parameters"] == 0
    banks = [s["memory_bank_patches"] for s in manifest["steps"] if s["step"] >= 0]
    # 8 images x 8 x 8 patches = 512 per task, coreset ratio 0.1 -> 51 more per task
    assert banks == [51, 102, 153]
    assert all(s["memory_bank_mb"] > 0 for s in manifest["steps"] if s["step"] >= 0)


def test_resume_after_each_step_is_identical(tmp_path, synthetic_cache) -> None:
    raw = _raw(memory="budget", memory_budget=80)
    full = run_experiment(validate(raw), out_root=tmp_path / "full", log=lambda _: None,
                          progress=False)
    steps = json.loads((full / "manifest.json").read_text())["steps"]
    assert [s.get("memory_bank_patches") for s in steps] == [None, 51, 80, 80]
    want = pd.read_csv(full / "records.csv", dtype=str)
    for done in (0, 1):
        copy = resume_cut_copy(full, tmp_path, "patchcore/seed0", done)
        pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str), want)
