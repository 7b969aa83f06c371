"""The report names, orders and colours detectors as the runs recorded them (manifest key
``detectors``), so it needs neither the detector modules (nor torch) nor a detector plugin that
is not installed where the report is made; runs without the key use the registry; a malformed
key is an error naming the manifest. Figures drawn in several processes are the same files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from report_fabricate import make_experiment, write_run

from cl_bench.errors import DataError
from cl_bench.report import plots, write_report
from cl_bench.report.build import FigureJob, render_figures
from cl_bench.report.labels import (
    config_label,
    detectors_as_recorded,
    method_sort_key,
    recorded_detectors,
)

TOY = [{"name": "toynet", "label": "Toy Net", "color": "#123456", "source": "toy-pkg"},
       {"name": "hybrid", "label": "Hybrid KD", "color": "#654321", "source": "cl-bench"}]


def _runs(root: Path, detectors) -> Path:
    """A hybrid run and a "toynet" one (the fabricated stpm run, renamed)."""
    experiment = root / "toy"
    write_run(experiment, "20261205T100000-hybrid", "hybrid", 0, detectors=detectors)
    toy = write_run(experiment, "20261205T100000-toynet", "stpm", 0, detectors=detectors)
    for name in ("records.csv", "config.yaml"):
        (toy / name).write_text((toy / name).read_text().replace("stpm", "toynet"))
    return experiment


def test_report_uses_the_labels_and_colours_the_runs_recorded(tmp_path: Path) -> None:
    """"toynet" is registered nowhere here: its label, place and colour come from the
    manifests; so does hybrid's label, which differs from the registry's."""
    result = write_report(_runs(tmp_path, TOY), tmp_path / "report", jobs=1)
    assert result.data.detectors is not None
    summary = (tmp_path / "report" / "tables" / "summary_image_auroc.md").read_text()
    rows = [line.split("|")[1].strip() for line in summary.splitlines()[2:]]
    assert rows == ["Toy Net / naive", "Hybrid KD / naive"]  # the recorded order
    with detectors_as_recorded(result.data.detectors):
        assert plots.method_colors(["hybrid", "toynet", "other"]) == {
            "hybrid": "#654321", "toynet": "#123456", "other": plots.OKABE_ITO["orange"]}
        assert method_sort_key("toynet") < method_sort_key("hybrid")
    # outside the report the registry answers again
    assert config_label("toynet", "naive") == "toynet / naive"


def test_runs_without_recorded_detectors_use_the_registry(tmp_path: Path) -> None:
    result = write_report(_runs(tmp_path, None), tmp_path / "report", jobs=1)
    assert result.data.detectors is None
    summary = (tmp_path / "report" / "tables" / "summary_image_auroc.md").read_text()
    assert "hybrid / naive" in summary and "Hybrid KD" not in summary


def test_a_method_no_manifest_describes_falls_back_to_the_registry() -> None:
    assert recorded_detectors([(Path("a"), {"detectors": TOY})], ["toynet", "stpm"]) is None
    assert recorded_detectors([(Path("a"), {"detectors": TOY}), (Path("b"), {})],
                              ["toynet"]) is None


def test_a_malformed_entry_names_the_manifest(tmp_path: Path) -> None:
    experiment = _runs(tmp_path, [{"name": "hybrid", "label": 3}])
    with pytest.raises(DataError, match=r"manifest\.json: detectors\[0\].*delete the key"):
        write_report(experiment, tmp_path / "report", jobs=1)


def _draw_pid(path: str):
    """A figure job that leaves the pid of the process that drew it."""
    from matplotlib.figure import Figure

    Path(path).write_text(str(os.getpid()))
    return Figure(figsize=(1, 1))


def test_figures_are_drawn_in_other_processes_when_asked(tmp_path: Path) -> None:
    jobs = [FigureJob(f"f{k}", "", _draw_pid, (str(tmp_path / f"pid{k}"),)) for k in range(3)]
    render_figures(jobs, tmp_path / "pool", jobs=2)
    assert all((tmp_path / "pool" / f"f{k}.png").is_file() for k in range(3))
    assert {int((tmp_path / f"pid{k}").read_text()) for k in range(3)} - {os.getpid()}
    render_figures(jobs, tmp_path / "here", jobs=1)
    assert {int((tmp_path / f"pid{k}").read_text()) for k in range(3)} == {os.getpid()}
    with pytest.raises(ValueError, match="jobs=0"):
        render_figures(jobs, tmp_path / "none", jobs=0)


def test_figures_are_the_same_files_in_one_process_or_several(tmp_path: Path) -> None:
    experiment = make_experiment(tmp_path / "results", seeds=(0, 1))
    one = write_report(experiment, tmp_path / "one", jobs=1)
    two = write_report(experiment, tmp_path / "two", jobs=2)
    pngs = sorted(p.name for p in (tmp_path / "one" / "figures").glob("*.png"))
    assert pngs and pngs == sorted(p.name for p in (tmp_path / "two" / "figures").glob("*.png"))
    for name in pngs:
        assert (tmp_path / "one" / "figures" / name).read_bytes() == \
            (tmp_path / "two" / "figures" / name).read_bytes(), name
    assert [f.name for f in one.figures] == [f.name for f in two.figures]
    assert json.dumps([f.caption for f in one.figures]) == \
        json.dumps([f.caption for f in two.figures])
