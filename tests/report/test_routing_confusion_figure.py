"""The report's routing confusion figure: the last step's matrix of each run and method/seed,
drawn; an unreadable matrix file is one clear error naming it."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from cl_bench.errors import DataError
from cl_bench.report import plots
from cl_bench.report.build import load_routing_confusions
from cl_bench.run.layout import RunLayout


def _write(run_dir, step: int, matrix: list[list[int]]) -> None:
    names = ["a", "b", "c"][: len(matrix[0])]
    path = RunLayout(run_dir).routing_confusion("stpm", 0, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(matrix, index=pd.Index(["a", "b", "c"], name="true_task"),
                         columns=names)
    path.write_text(frame.to_csv())


def test_last_step_matrix_is_drawn(tmp_path) -> None:
    _write(tmp_path, 0, [[4], [4], [4]])
    _write(tmp_path, 1, [[4, 0], [1, 3], [2, 2]])
    panels = load_routing_confusions([SimpleNamespace(path=tmp_path, run_id="run-abcdef")])
    assert [title for title, _ in panels] == ["abcdef stpm seed0 step 1"]
    assert panels[0][1].to_numpy().tolist() == [[4, 0], [1, 3], [2, 2]]
    fig = plots.plot_routing_confusions(panels)
    assert fig.axes[0].get_ylabel() == "true task"


def test_unreadable_matrix_names_the_file(tmp_path) -> None:
    path = RunLayout(tmp_path).routing_confusion("stpm", 0, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match=r"confusion_step00\.csv"):
        load_routing_confusions([SimpleNamespace(path=tmp_path, run_id="r")])
