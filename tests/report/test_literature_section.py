"""The report's section "As the literature reports it" and the published-numbers CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cl_bench.data.splits import DATASET_CATEGORIES
from cl_bench.report.literature import PUBLISHED, literature_section, published_rows
from cl_bench.report.load import RunInfo

MVTEC = list(DATASET_CATEGORIES["mvtec"])


def _rows(run_dir: str, strategy: str, value: float, steps: list[int]) -> list[dict]:
    """Image AUROC ``value`` and pixel AP ``value / 2`` for every category at ``steps``."""
    return [dict(run_dir=run_dir, method="stpm", strategy=strategy, seed=0, step=step,
                 eval_index=j, eval_task=c, metric=metric, value=v)
            for step in steps for j, c in enumerate(MVTEC)
            for metric, v in (("image_auroc", value), ("pixel_ap", value / 2))]


def test_one_category_table_with_replaycad_fm_and_a_published_row_as_context():
    runs = [RunInfo(path=Path(p), run_id=p) for p in ("naive_run", "joint_run")]
    df = pd.DataFrame(_rows("naive_run", "naive", 0.7, list(range(15)))
                      + _rows("joint_run", "joint", 0.9, [14]))
    published = [dict(method="X", venue="v", dataset="MVTec AD", protocol="one_category",
                      metric="image_auroc_final", definition="d", value="0.972", source="s",
                      caveats="c"),
                 dict(method="Y", venue="v", dataset="VisA", protocol="one_category",
                      metric="image_auroc_final", definition="d", value="0.5", source="s",
                      caveats="c")]
    text = "\n".join(literature_section(df, runs, published))
    assert "### Protocol: one category per task" in text
    naive = next(line for line in text.splitlines() if line.startswith("| stpm / naive"))
    # final 70.0, pixel AP 35.0, FM = joint - naive = 20.0 (image) and 10.0 (pixel AP)
    assert naive == "| stpm / naive | 70.0 (n=1) | 35.0 (n=1) | 20.0 (n=1) | 10.0 (n=1) |"
    assert "cannot be computed from a continual run" in text
    assert "Published, not reproduced" in text and "| X | v | MVTec AD |" in text
    assert "| 97.2 |" in text and "**" not in text
    assert "| Y |" not in text  # another dataset: not shown


def test_every_published_row_names_its_source_and_value():
    rows = published_rows(PUBLISHED)
    assert rows, f"{PUBLISHED} is empty"
    for row in rows:
        assert row["source"].strip() and row["definition"].strip() and row["caveats"].strip()
        assert 0 <= float(row["value"]) <= 1
        assert row["protocol"] in {"one_category", "mvtec_14_1", "mvtec_10_5", "mvtec_3x5",
                                   "mvtec_10_1x5", "visa_11_1", "visa_8_4", "visa_8_1x4"}


@pytest.mark.parametrize("protocol", ["mvtec_14_1"])
def test_x_y_table_gives_a_auroc_from_the_seen_categories(protocol):
    run = RunInfo(path=Path("r"), run_id="r", config={"data": {"tasks": protocol}},
                  manifest={"tasks": [MVTEC[:14], MVTEC[14:]]})
    rows = []
    for j, c in enumerate(MVTEC):  # step 0: base categories 0.8, zipper (unseen) 0.0
        rows.append(dict(run_dir="r", method="stpm", strategy="naive", seed=0, step=0,
                         eval_index=j, eval_task=c, metric="image_auroc",
                         value=0.0 if c == "zipper" else 0.8))
        rows.append(dict(run_dir="r", method="stpm", strategy="naive", seed=0, step=1,
                         eval_index=j, eval_task=c, metric="image_auroc", value=0.6))
    text = "\n".join(literature_section(pd.DataFrame(rows), [run], []))
    line = next(x for x in text.splitlines() if x.startswith("| stpm / naive"))
    assert line.split(" | ")[1] == "60.0 (n=1)"  # final mean
    assert line.split(" | ")[3] == "70.0 (n=1)"  # A-AUROC: (80 + 60) / 2, zipper left out
