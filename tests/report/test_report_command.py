"""``cl-bench report``: files written, report.md self-contained, errors without traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fabricate import make_experiment, write_run

from cl_bench.cli import main
from cl_bench.report import build, build_report


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A full report (one metric, to keep rendering short) over 2 methods x 3 seeds + 1 running."""
    exp = make_experiment(tmp_path_factory.mktemp("results"))
    write_run(exp, "20261128T120000-running", "hybrid", 7, strategy="replay", steps=[0],
              status="running")
    out = exp / "report"
    assert main(["report", str(exp), "--metric", "image_auroc"]) == 0
    return out


def test_report_files_exist(report_dir: Path) -> None:
    for name in ("forgetting_image_auroc", "average_image_auroc", "heatmap_image_auroc",
                 "final_per_task_image_auroc", "anomaly_maps"):
        for ext in ("png", "pdf"):
            path = report_dir / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    for name in ("summary_image_auroc", "final_per_task_image_auroc", "comparison"):
        for ext in ("csv", "md", "tex"):
            assert (report_dir / "tables" / f"{name}.{ext}").is_file()
    assert (report_dir / "tables" / "per_run_metrics.csv").is_file()
    assert not (report_dir / "tables" / "summary_pixel_auroc.csv").exists()  # --metric


def test_report_md_reads_alone(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    for heading in ("## Experiment", "## Protocol", "## State of the runs", "## Summary",
                    "## Final value of each task", "## Result matrices", "## Figures",
                    "## Runs: manifest facts", "### Versions"):
        assert heading in text
    assert "bottle → cable → metal_nut" in text
    assert "20261128T120000-running is running" in text  # partial run said so ...
    assert "left out of every table, figure and paired test" in text  # ... and left out
    assert "hybrid / replay" not in text.split("## State of the runs")[1]
    assert "| python | 3.11.0 |" in text and "812" in text  # versions, peak memory
    assert "![" in text and "(figures/forgetting_image_auroc.png)" in text
    assert "**0.860 ± 0.010**" in text
    for link in ("tables/summary_image_auroc.tex", "figures/anomaly_maps.pdf"):
        assert (report_dir / link).is_file() and f"({link})" in text


def test_several_paths_need_out(tmp_path: Path, capsys) -> None:
    exp = make_experiment(tmp_path, seeds=(0,), maps=False)
    runs = sorted(str(p) for p in exp.iterdir())
    assert main(["report", *runs]) == 2
    assert "pass --out" in capsys.readouterr().err


def test_unknown_metric_is_a_clear_error(tmp_path: Path, capsys) -> None:
    exp = make_experiment(tmp_path, seeds=(0,), maps=False)
    assert main(["report", str(exp), "--metric", "au_pro"]) == 2
    err = capsys.readouterr().err
    assert "au_pro" in err and "image_auroc" in err and "Traceback" not in err


def test_build_report_returns_the_folder(tmp_path: Path, monkeypatch) -> None:
    # rendering is tested above
    monkeypatch.setattr(build, "write_figures", lambda data, out_dir, jobs=None: [])
    exp = make_experiment(tmp_path, seeds=(0,), methods=("hybrid",), maps=False)
    run = next(exp.iterdir())
    out = build_report([run], run / "report", metrics=["pixel_auroc"])
    assert out == run / "report" and (out / "report.md").is_file()
    assert "No paired comparison" in (out / "report.md").read_text()
