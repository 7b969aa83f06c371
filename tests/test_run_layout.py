"""RunLayout: the paths of a run folder and the map names the report parses back."""

from __future__ import annotations

from pathlib import Path

import pytest

from cl_bench.errors import DataError
from cl_bench.run.layout import MapName, RunLayout, map_file_name, parse_map_name


def test_paths_of_a_run_folder(tmp_path: Path) -> None:
    layout = RunLayout.of(tmp_path, "exp", "run1")
    assert layout.root == tmp_path / "exp" / "run1"
    assert layout.records == layout.root / "records.csv"
    assert layout.checkpoint("stpm", 2, 3) == layout.root / "checkpoints/stpm/seed2/step03.pt"
    assert layout.scores("rd4ad", 0, 11) == layout.root / "scores/rd4ad/seed0/task11.npz"
    assert layout.map_files() == []


@pytest.mark.parametrize("name", [MapName("stpm", "naive", 0), MapName("hybrid", "ewc", -3),
                                  MapName("rd4ad", "lwf", 12)])
def test_map_names_parse_back(name: MapName, tmp_path: Path) -> None:
    path = RunLayout(tmp_path).map_file(name.method, name.strategy, name.seed)
    assert path.name == map_file_name(name.method, name.strategy, name.seed)
    parsed = parse_map_name(path)
    assert parsed == name


def test_other_file_names_are_refused() -> None:
    with pytest.raises(DataError, match=r"<method>__<strategy>__seed<seed>\.npz"):
        parse_map_name("maps/stpm_naive_seed0.npz")
