"""Issue #27, data rows: every data problem is named before a run folder exists, all at once.

Each test failed before the fix: a truncated or zero-byte image, a mask of the wrong size and a
symbolic-link loop were found only while the run trained (after its folder was made), an empty
category folder was skipped, ``data info --check`` stopped at the first problem of a category,
a BTAD orphan mask was not named, a file as ``data.root`` "did not exist", and a VisA root read
as MVTec gave no hint.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import yaml
from data_helpers import write_image

from cl_bench.cli import main
from cl_bench.data import ImageCache, MVTecDataset, list_categories
from cl_bench.errors import DataError


def _run(capsys, tmp_path, root, **data):
    """``cl-bench run`` on ``root`` (stpm, random teacher): (exit status, output, out folder)."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": "check",
        "data": {"source": "folder", "root": str(root), "image_size": 32, **data},
        "model": {"methods": ["stpm"], "weights": "none"}, "device": "cpu",
        "train": {"epochs": 1}}))
    out = tmp_path / "out"
    status = main(["run", str(config), "--out", str(out), "--progress", "off"])
    captured = capsys.readouterr()
    return status, captured.out + captured.err, out


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_every_bad_file_is_named_before_the_run_folder_exists(tiny_root, tmp_path, capsys):
    truncated = tiny_root / "widget/train/good/000.png"
    _truncate(truncated)
    zero = tiny_root / "gadget/test/good/001.png"
    zero.write_bytes(b"")
    wrong = write_image(tiny_root / "widget/ground_truth/scratch/001_mask.png",
                        np.full((12, 12), 255, dtype=np.uint8))
    truncated_mask = tiny_root / "gadget/ground_truth/hole/001_mask.png"
    _truncate(truncated_mask)
    status, said, out = _run(capsys, tmp_path, tiny_root)
    assert status == 2 and "Traceback" not in said
    assert not out.exists()  # no run folder, so nothing to mark failed or resume
    for path in (truncated, zero, wrong, truncated_mask):
        assert str(path) in said
    assert "4 problems" in said and "12x12" in said and "re-extract" in said
    assert "--resume" not in said


def test_a_truncated_jpeg_is_named_before_the_run_folder_exists(category_factory, tmp_path,
                                                                capsys):
    root = category_factory(suffix=".jpg", size=(64, 64))
    bad = root / "widget/test/scratch/001.jpg"
    _truncate(bad, 0.6)
    status, said, out = _run(capsys, tmp_path, root)
    assert status == 2 and str(bad) in said and "truncated" in said and not out.exists()


def test_a_symlink_loop_is_named_as_a_loop_not_as_a_removed_file(tiny_root, tmp_path, capsys):
    loop = tiny_root / "widget/train/good/zzz.png"
    os.symlink(loop, loop)  # points at itself
    mask = tiny_root / "gadget/ground_truth/dent/000_mask.png"
    mask.unlink()
    os.symlink(mask.with_name("other.png"), mask)
    mask.with_name("other.png").symlink_to(mask)  # a loop of two links
    status, said, out = _run(capsys, tmp_path, tiny_root)
    assert status == 2 and not out.exists()
    assert str(loop) in said and "loops" in said
    assert f"{mask} is a symbolic link that loops" in said
    category = tiny_root / "bottle"
    category.symlink_to(category)  # a category folder that loops
    status, said, out = _run(capsys, tmp_path, tiny_root)
    assert status == 2 and f"{category} is a symbolic link that loops" in said
    root = tmp_path / "root_link"
    root.symlink_to(root)
    status, said, out = _run(capsys, tmp_path, root)
    assert status == 2 and f"{root} is a symbolic link that loops" in said
    assert "does not exist" not in said
    with pytest.raises(DataError, match="symbolic link that loops"):
        list_categories(root)
    assert "removed since" not in said and "--resume" not in said


def test_an_empty_category_folder_is_an_error_naming_it(tiny_root, tmp_path, capsys):
    empty = tiny_root / "bottle"
    empty.mkdir()
    with pytest.raises(DataError, match="empty folder") as err:
        list_categories(tiny_root)
    assert str(empty) in str(err.value)
    for data in ({}, {"categories": ["bottle"]}):  # all categories, or the empty one by name
        status, said, out = _run(capsys, tmp_path, tiny_root, **data)
        assert status == 2 and str(empty) in said and "empty folder" in said
        assert "not found" not in said and not out.exists()


def test_data_info_check_lists_every_problem_of_a_category(tiny_root, capsys):
    stray = tiny_root / "widget/train/good/notes.txt"
    stray.write_text("x")
    truncated = tiny_root / "widget/test/good/000.png"
    _truncate(truncated)
    missing = tiny_root / "widget/ground_truth/scratch/001_mask.png"
    missing.unlink()
    orphan = write_image(tiny_root / "widget/ground_truth/scratch/007_mask.png",
                         np.full((24, 24), 255, dtype=np.uint8))
    status = main(["data", "info", str(tiny_root), "--check"])
    said = capsys.readouterr()
    text = said.out + said.err
    assert status == 2 and "Traceback" not in text
    for path in (stray, truncated, missing, orphan):
        assert str(path) in text, path
    assert "4 problems in category 'widget'" in text


def test_a_dataset_built_without_a_list_still_raises_all_scan_problems_at_once(tiny_root):
    (tiny_root / "widget/train/good/a.txt").write_text("x")
    (tiny_root / "widget/train/good/b.txt").write_text("x")
    with pytest.raises(DataError, match="2 problems in") as err:
        MVTecDataset(tiny_root, "widget", "train", 16, cache=ImageCache(max_mb=0))
    assert "a.txt" in str(err.value) and "b.txt" in str(err.value)


def test_data_root_that_is_a_file_says_so(tmp_path, capsys):
    root = tmp_path / "mvtec.tar.xz"
    root.write_bytes(b"x")
    status, said, out = _run(capsys, tmp_path, root)
    assert status == 2 and "is a file" in said and "does not exist" not in said
    assert "folder" in said and not out.exists()


def test_a_visa_root_read_as_mvtec_suggests_format_visa(tmp_path, capsys):
    from layout_fixtures import VISA_PLAN, make_visa

    root = make_visa(tmp_path / "visa", VISA_PLAN)
    status = main(["data", "info", str(root), "--format", "mvtec"])
    said = capsys.readouterr()
    assert status == 2 and "format: visa" in said.out + said.err
    status, text, _ = _run(capsys, tmp_path, root, format="mvtec")
    assert status == 2 and "format: visa" in text


def test_a_btad_mask_whose_stem_differs_from_its_image_is_named(tmp_path):
    from layout_fixtures import make_btad

    root = make_btad(tmp_path / "btad", {"01": (2, 1, 2)})
    masks = root / "01/ground_truth/ko"
    mask = sorted(masks.iterdir())[0]
    renamed = mask.with_name(f"{mask.stem}_x{mask.suffix}")
    mask.rename(renamed)
    with pytest.raises(DataError) as err:
        MVTecDataset(root, "01", "test", 16, cache=ImageCache(max_mb=0), format="btad")
    assert str(renamed) in str(err.value) and "has no image" in str(err.value)
    assert "has no mask" in str(err.value)
    assert f"match no image ({renamed.name})" in str(err.value)
    assert f"rename it to {mask.stem}.<png|bmp>" in str(err.value)


def test_the_quick_check_accepts_the_real_data(tmp_path):
    # the files of a real MVTec AD subset pass the check that every run makes
    from cl_bench.data.checks import file_problems

    root = os.path.join(os.path.dirname(__file__), "../../../shared/data/mvtec_ad_mini")
    if not os.path.isdir(root):
        pytest.skip("../shared/data not present")
    dataset = MVTecDataset(root, "bottle", "test", 32, cache=ImageCache(max_mb=0))
    assert file_problems(dataset) == []
    shutil.rmtree(tmp_path)


def test_an_empty_mask_is_said_once_in_cl_bench_format_and_kept_in_the_manifest(
        tiny_root, tmp_path, capsys, recwarn):
    import json

    from cl_bench.data import DataWarning

    mask = write_image(tiny_root / "widget/ground_truth/scratch/001_mask.png",
                       np.zeros((24, 24), dtype=np.uint8))
    status, said, out = _run(capsys, tmp_path, tiny_root, categories=["widget"])
    assert status == 0, said
    assert said.count(str(mask)) == 1, said  # was: once, then Python warnings during evaluation
    assert "DataWarning" not in said and f"warning: {mask}" in said
    # the CLI would print these in Python's format (three times: once per evaluation)
    assert [w for w in recwarn if issubclass(w.category, DataWarning)] == []
    manifest = json.loads(next(out.glob("check/*/manifest.json")).read_text())
    assert sum(str(mask) in w for w in manifest["warnings"]) == 1
