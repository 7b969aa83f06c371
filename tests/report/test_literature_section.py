"""The report's section "As the literature reports it" and the published-numbers CSV."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cl_bench.data.splits import DATASET_CATEGORIES, NAMED_SPLITS
from cl_bench.errors import DataError
from cl_bench.report.literature import (
    PUBLISHED,
    PUBLISHED_COLUMNS,
    PUBLISHED_METRICS,
    literature_section,
    published_rows,
)
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


def _published(method: str, protocol: str, metric: str, value: str = "0.9") -> dict[str, str]:
    return dict(method=method, venue="v", dataset="MVTec AD", protocol=protocol, metric=metric,
                definition="d", value=value, source="s", caveats="c")


def test_a_published_row_is_shown_only_where_protocol_and_definition_match():
    runs = [RunInfo(path=Path(p), run_id=p) for p in ("naive_run", "joint_run")]
    df = pd.DataFrame(_rows("naive_run", "naive", 0.7, list(range(15)))
                      + _rows("joint_run", "joint", 0.9, [14]))
    published = [_published("Same", "one_category", "image_auroc_final"),
                 _published("SameFM", "one_category", "image_fm_vs_joint", "0.02"),
                 _published("OtherFM", "one_category", "image_fm_memory_gap", "0.013"),
                 _published("Unstated", "one_category", "image_auroc_average_unstated"),
                 _published("OtherProtocol", "mvtec_10_5", "image_auroc_final")]
    lines = literature_section(df, runs, published)
    shown = {line.split(" | ")[0].lstrip("| ") for line in lines
             if line.startswith("| ") and " | v | " in line}
    # a final image AUROC and ReplayCAD's FM (joint minus continual) are columns of this table;
    # UCAD's memory-gap FM, an unstated average and another protocol are not
    assert shown == {"Same", "SameFM"}
    text = "\n".join(lines)
    assert "Published, not reproduced" in text and "**" not in text


def test_every_published_row_names_its_source_and_a_value_of_its_unit():
    rows = published_rows(PUBLISHED)  # raises DataError on a row that breaks the rules below
    assert rows, f"{PUBLISHED} is empty"
    for row in rows:
        assert list(row) == list(PUBLISHED_COLUMNS)
        assert row["source"].strip() and row["definition"].strip() and row["caveats"].strip()
        assert row["metric"] in PUBLISHED_METRICS
        assert (-1 if "_fm_" in row["metric"] else 0) <= float(row["value"]) <= 1
        assert row["protocol"] in {"one_category", *NAMED_SPLITS}


@pytest.mark.parametrize(("column", "bad", "message"), [
    ("source", " ", "empty 'source'"),
    ("value", "97.2", "not a number in [0, 1]"),
    ("value", "n/a", "not a number in [0, 1]"),
    ("metric", "image_auroc_mean", "not a known key"),
    ("protocol", "mvtec_5_5", "protocol 'mvtec_5_5'"),
])
def test_a_bad_published_row_is_refused_naming_its_line(tmp_path, column, bad, message):
    good = _published("M", "one_category", "image_auroc_final")
    path = tmp_path / "published.csv"
    pd.DataFrame([good, {**good, column: bad}]).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"line 3: .*{re.escape(message[:12])}"):
        published_rows(path)


def test_a_published_fm_may_be_negative(tmp_path):
    path = tmp_path / "published.csv"
    pd.DataFrame([_published("M", "one_category", "image_fm_vs_joint", "-0.01")]).to_csv(
        path, index=False)
    assert published_rows(path)[0]["value"] == "-0.01"


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
