"""Every experiment file the README and docs quote loads and validates as written: a plain
configuration with :func:`cl_bench.config.load_config`, a sweep (a ``grid`` section) with
:func:`cl_bench.sweep.grid.load_sweep` and every cell of its grid expanded and validated. A
renamed option or a misspelt grid key in one of them fails here, not in a user's first run.
(Data folders are not needed: validation does not read images; a file that leaves
``data.root`` to the user gets one.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cl_bench.config import load_config, validate
from cl_bench.sweep.grid import expand, load_sweep

EXPERIMENTS = Path(__file__).parents[1] / "experiments"
FILES = sorted([*EXPERIMENTS.glob("*.yaml"), *EXPERIMENTS.glob("tuning/*.yaml")])


def test_the_experiment_folder_is_found() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_experiment_file_validates(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    data = raw.get("data", {})
    # files for the full datasets leave data.root to the user (--set data.root=...), as their
    # comments say
    overrides = ([] if data.get("root") or data.get("sources") or data.get("source") != "folder"
                 else ["data.root=/data/mvtec_ad"])
    if "grid" not in raw:
        load_config(path, overrides)
        return
    cells = expand(load_sweep(path, overrides))
    assert cells, f"{path.name}: the grid expands to no cell"
    for cell in cells:
        validate(cell.config)
