"""Report file names are safe slugs and a report is written whole or not at all (issue #27,
deliverable 1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from report_fabricate import write_run

from cl_bench.cli import main
from cl_bench.report import build
from cl_bench.report.names import Slugs, slug
from cl_bench.report.variants import path_tails

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _runs_differing_in_root(root: Path, roots: tuple[str, ...]) -> Path:
    for seed in (0, 1):
        for k, data_root in enumerate(roots):
            run = write_run(root, f"r{k}-{seed}", "stpm", seed)
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["data"] = {"source": "folder", "root": data_root}
            (run / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_runs_differing_in_data_root_give_a_report_of_safe_names(tmp_path, capsys) -> None:
    exp = _runs_differing_in_root(tmp_path / "exp", ("/data/site a/mvtec_ad",
                                                     "/data/site 'b'/mvtec_ad"))
    assert main(["report", str(exp), "--metric", "image_auroc"]) == 0
    said = capsys.readouterr().out
    report = exp / "report"
    names = [p.name for p in report.rglob("*")]
    assert names and all(SAFE.match(name) for name in names), names
    assert "naive [root=site a/mvtec_ad]" in said  # the label: the part of the path that differs
    assert "R_image_auroc__stpm__naive_root-site_a_mvtec_ad.csv" in names
    text = (report / "report.md").read_text()
    for link in re.findall(r"\]\((tables/[^)]+)\)", text):
        assert (report / link).is_file(), link
    assert not [p for p in exp.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_failing_report_leaves_the_earlier_one_whole(tmp_path, monkeypatch, capsys) -> None:
    exp = _runs_differing_in_root(tmp_path / "exp", ("/d/a", "/d/b"))
    assert main(["report", str(exp), "--metric", "image_auroc"]) == 0
    before = {p.relative_to(exp): p.read_bytes() for p in (exp / "report").rglob("*")
              if p.is_file()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(exp / "report" / "figures" / "x.png"))

    monkeypatch.setattr(build, "write_figures", full_disk)
    assert main(["report", str(exp), "--metric", "image_auroc"]) == 2
    after = {p.relative_to(exp): p.read_bytes() for p in (exp / "report").rglob("*")
             if p.is_file()}
    assert after == before
    assert not [p for p in exp.iterdir() if p.name.startswith(".")]


def test_a_failing_first_report_leaves_no_folder(tmp_path, monkeypatch) -> None:
    exp = _runs_differing_in_root(tmp_path / "exp", ("/d/a", "/d/b"))

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build, "write_figures", broken)
    assert main(["report", str(exp), "--metric", "image_auroc"]) == 2
    assert sorted(p.name for p in exp.iterdir()) == ["r0-0", "r0-1", "r1-0", "r1-1"]


def test_a_report_into_a_folder_of_other_files_keeps_them(tmp_path) -> None:
    exp = _runs_differing_in_root(tmp_path / "exp", ("/d/a", "/d/b"))
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["report", str(exp), "--out", str(out), "--metric", "image_auroc"]) == 0
    assert main(["report", str(exp), "--out", str(out), "--metric", "image_auroc"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "report.md").is_file()


@pytest.mark.parametrize("label", ["R_x__stpm__ewc [ewc_lambda=10]", "a/b/../c", "it's \"q\"",
                                   "..", "x" * 400, "tab\there"])
def test_slug_is_a_safe_file_name(label) -> None:
    name = slug(label)
    assert SAFE.match(name) and not name.startswith(".") and len(name) <= 120


def test_labels_that_collapse_get_distinct_slugs() -> None:
    names = Slugs()
    assert names("lr [x=1]") != names("lr [x 1]")
    assert names("lr [x=1]") == names("lr [x=1]")


def test_path_tails_keep_what_differs() -> None:
    assert path_tails(["/data/a/mvtec", "/data/b/mvtec"]) == {"/data/a/mvtec": "a/mvtec",
                                                              "/data/b/mvtec": "b/mvtec"}
    assert path_tails(["/d/x", "/d/x/y"]) == {"/d/x": "x", "/d/x/y": "x/y"}


def test_report_first_paragraph_is_whole_sentences(tmp_path) -> None:
    from report_fabricate import make_experiment

    from cl_bench.report import build_report


    exp = make_experiment(tmp_path / "results", seeds=(0,), methods=("stpm",), maps=False)
    out = build_report([exp], tmp_path / "report", metrics=["image_auroc"])
    paragraphs = (out / "report.md").read_text().split("\n\n")
    first = paragraphs[1]  # after the title
    assert first.startswith("This report covers") and first.rstrip().endswith(".")
    assert f"`{exp}`" in first
