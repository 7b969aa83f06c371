"""``cl-bench data synth`` and ``cl-bench data info``."""

from __future__ import annotations

from cl_bench.cli import main


def test_synth_then_info(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["--categories", "2", "--train", "3", "--test", "4", "--size", "16", "--seed", "1"]
    assert main(["data", "synth", "--out", str(out), *args]) == 0
    assert "wrote 2 categories (stripes, disc)" in capsys.readouterr().out
    assert main(["data", "info", str(out), "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{out}: 2 categories (mvtec layout)"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows["disc"][1:5] == ["3", "2", "2", "2"]  # train, test good, defective, masks
    assert "16x16" in rows["stripes"] and "RGB" in rows["stripes"]
    assert lines[4].split()[:5] == ["total", "6", "4", "4", "4"]
    assert lines[-1].startswith("check: every image and mask decoded")


def test_info_of_selected_categories(tmp_path, capsys):
    out = tmp_path / "synth"
    main(["data", "synth", "--out", str(out), "--categories", "3", "--train", "1", "--test", "2"])
    capsys.readouterr()
    assert main(["data", "info", str(out), "--categories", "checker"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("1 category (mvtec layout)") and lines[2].split()[0] == "checker"


def test_info_reports_bad_data_as_one_error(tmp_path, capsys):
    out = tmp_path / "synth"
    main(["data", "synth", "--out", str(out), "--categories", "2", "--train", "1", "--test", "2"])
    (out / "disc/ground_truth/spot/000_mask.png").unlink()
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 2
    captured = capsys.readouterr()
    assert "stripes" in captured.out  # the sound category is still listed
    assert (
        "1 of 2 categories" in captured.err and "disc/test/spot/000.png has no mask" in captured.err
    )
    assert "Traceback" not in captured.err


def test_unknown_category_and_missing_root(tmp_path, capsys):
    out = tmp_path / "synth"
    main(["data", "synth", "--out", str(out), "--categories", "1", "--train", "1", "--test", "2"])
    assert main(["data", "info", str(out), "--categories", "stripe"]) == 2
    assert "Did you mean 'stripes'?" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_synth_parameters_are_reported(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--categories", "99"]) == 2
    assert "n_categories=99 must be between 1 and 15" in capsys.readouterr().err
