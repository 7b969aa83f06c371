"""Runs whose tasks hold several categories (data.tasks): records, report, bad splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fault_helpers import cli, write_config
from runner_helpers import tiny_raw

from cl_bench.config import validate
from cl_bench.run.experiment import run_experiment

TASKS = [["stripes", "disc"], ["checker", "ring"]]
SYNTH4 = {"categories": 4, "train": 4, "test": 4, "size": 32}


def _run(tmp_path, strategy: str):
    cfg = validate(tiny_raw(**{"data.synthetic": SYNTH4, "data.tasks": TASKS,
                               "strategy.name": strategy, "eval.saved_maps_per_task": 0}))
    run_dir = run_experiment(cfg, out_root=tmp_path / strategy, log=lambda _: None, progress=False)
    return run_dir, pd.read_csv(run_dir / "records.csv")


@pytest.mark.parametrize("strategy", ["naive", "replay", "routing", "joint", "cumulative",
                                      "independent"])
def test_every_strategy_records_one_column_per_category(strategy, tmp_path, synthetic_cache):
    run_dir, records = _run(tmp_path, strategy)
    per_category = records[records["eval_index"] >= 0]
    assert sorted(per_category["eval_task"].unique()) == sorted(c for t in TASKS for c in t)
    steps = sorted(records["step"].unique())
    assert steps == ([-1, 1] if strategy == "joint" else [-1, 0, 1])
    trained = set(records.loc[records["step"] >= 0, "train_task"])
    assert trained == ({"joint"} if strategy == "joint" else {"stripes+disc", "checker+ring"})
    last = per_category[(per_category["step"] == 1) & (per_category["metric"] == "image_auroc")]
    assert len(last) == 4  # after the last task every category has its value
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["tasks"] == TASKS and manifest["status"] == "complete"


def test_report_shows_task_level_matrices_and_the_literature_table(tmp_path, synthetic_cache):
    from cl_bench.report.build import compute

    run_dir, records = _run(tmp_path, "naive")
    data = compute([run_dir])
    matrix = next(m for m in data.matrices if m.metric == "image_auroc")
    assert matrix.tasks == ("stripes+disc", "checker+ring") and matrix.R.shape == (2, 2)
    image = records[(records["metric"] == "image_auroc") & (records["eval_index"] >= 0)]
    by_step = image.set_index(["step", "eval_task"])["value"]
    assert matrix.R[1, 0] == pytest.approx((by_step[1, "stripes"] + by_step[1, "disc"]) / 2)
    # A-AUROC by hand: step 0 over its two categories, step 1 over all four
    hand = np.mean([image[(image["step"] == 0) & image["eval_task"].isin(TASKS[0])]
                    ["value"].mean(), image[image["step"] == 1]["value"].mean()])
    text = "\n".join(data.literature)
    assert "## As the literature reports it" in text and "custom" in text
    row = next(line for line in data.literature if line.startswith("| stpm / naive"))
    assert f"| {hand * 100:.1f} (n=1) |" in row


@pytest.mark.parametrize(("tasks", "extra", "said"), [
    ([["stripes", "disc"], ["checker", "nowhere"]], {}, "category 'nowhere' is not in"),
    ([["stripes", "disc"], ["disc", "checker", "ring"]], {}, "'disc' is in tasks 0 and 1"),
    ([["stripes", "disc"], [], ["checker", "ring"]], {}, "task 1 is empty"),
    ([["stripes", "disc"], ["checker"]], {}, "leaves out 1 category"),
    ("visa_8_4", {}, "'visa_8_4' is a VisA split"),
    ([["stripes"]], {"data.allow_unused_categories": "maybe"}, "allow_unused_categories"),
])
def test_bad_splits_fail_before_training_with_one_message(tasks, extra, said, capsys, tmp_path,
                                                          synthetic_cache):
    config = write_config(tmp_path / "bad.yaml", **{"data.synthetic": SYNTH4,
                                                     "data.tasks": tasks, **extra})
    status, text = cli(capsys, "run", str(config), "--out", str(tmp_path / "out"))
    assert status == 2 and said in text
    assert "Traceback" not in text and not (tmp_path / "out").exists()


@pytest.mark.parametrize("strategy", ["replay", "independent"])
def test_a_split_run_cut_after_its_first_task_resumes_to_the_same_records(strategy, tmp_path,
                                                                          synthetic_cache):
    from runner_helpers import resume_cut_copy

    run_dir, records = _run(tmp_path, strategy)
    resumed = resume_cut_copy(run_dir, tmp_path / "cut", "stpm/seed0", 0)
    again = pd.read_csv(resumed / "records.csv")
    key = ["step", "eval_index", "metric"]
    pd.testing.assert_frame_equal(again.sort_values(key).reset_index(drop=True),
                                  records.sort_values(key).reset_index(drop=True))


def test_the_x_y_sweep_has_one_cell_per_split_detector_strategy_and_seed(capsys):
    from pathlib import Path

    sweep = Path(__file__).resolve().parents[2] / "experiments" / "mvtec_x_y.yaml"
    status, text = cli(capsys, "sweep", str(sweep), "--dry-run")
    assert status == 0
    cells = [line for line in text.splitlines() if "data.tasks=" in line]
    assert len(cells) == 4 * 4 * 4 * 3
    for split in ("mvtec_14_1", "mvtec_10_5", "mvtec_3x5", "mvtec_10_1x5"):
        assert sum(f"tasks={split}-" in line for line in cells) == 48
