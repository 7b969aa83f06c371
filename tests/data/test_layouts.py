"""VisA, BTAD and MPDD in the layouts their authors publish, against hand-written expectations."""

from __future__ import annotations

import re

import numpy as np
import pytest
from layout_fixtures import VISA_PLAN, make_btad, make_mpdd, make_visa

from cl_bench.cli import main
from cl_bench.data import ImageCache, MVTecDataset, detect_format, list_categories
from cl_bench.errors import ConfigError, DataError

SIZE = 16


def _dataset(root, category, split, format="auto"):
    return MVTecDataset(root, category, split, SIZE, cache=ImageCache(max_mb=0), format=format)


def _names(dataset):
    return [p.name for p in dataset.paths]


# ---- VisA --------------------------------------------------------------------------------------
@pytest.fixture
def visa_root(tmp_path):
    return make_visa(tmp_path / "VisA", VISA_PLAN)


def test_visa_is_detected_and_lists_its_categories(visa_root):
    assert detect_format(visa_root) == "visa"
    assert list_categories(visa_root) == ["candle", "pcb1"]


def test_visa_1cls_split_counts_labels_and_order(visa_root):
    train = _dataset(visa_root, "candle", "train")
    test = _dataset(visa_root, "candle", "test")
    assert train.format == test.format == "visa"
    # hand-written: the split file's train rows (sorted), never the unlisted 0099
    assert _names(train) == ["0000.JPG", "0001.JPG", "0002.JPG", "0003.JPG"]
    assert train.labels == [0, 0, 0, 0] and train.mask_paths == [None] * 4
    # test: normal rows first, then anomaly rows, each sorted by path
    assert _names(test) == ["0004.JPG", "0005.JPG", "000.JPG", "001.JPG"]
    assert test.labels == [0, 0, 1, 1]
    assert test.defect_types == ["good", "good", "anomaly", "anomaly"]
    assert test.paths[2] == visa_root / "candle/Data/Images/Anomaly/000.JPG"
    assert test.mask_paths[2] == visa_root / "candle/Data/Masks/Anomaly/000.png"
    assert test.mask_paths[:2] == [None, None]
    pcb1 = _dataset(visa_root, "pcb1", "test")
    assert (len(_dataset(visa_root, "pcb1", "train")), pcb1.labels) == (3, [0, 1, 1, 1])


def test_visa_small_mask_values_are_binarised(visa_root):
    test = _dataset(visa_root, "candle", "test")
    # the fixture marks the top-left quarter with 1, 2 or 3 (VisA's class index), never 255
    for index in (2, 3):
        _, label, mask = test[index]
        assert label == 1 and set(mask.unique().tolist()) == {0.0, 1.0}
        expected = np.zeros((SIZE, SIZE), dtype=np.float32)
        expected[: SIZE // 2, : SIZE // 2] = 1
        assert np.array_equal(mask[0].numpy(), expected)
    _, label, mask = test[0]
    assert label == 0 and mask.sum() == 0


def test_visa_missing_split_file(visa_root):
    (visa_root / "split_csv/1cls.csv").unlink()
    with pytest.raises(DataError) as err:
        _dataset(visa_root, "candle", "train")
    message = str(err.value)
    assert str(visa_root / "split_csv/1cls.csv") in message and "not found" in message
    assert "amazon-science/spot-diff" in message


def test_visa_category_folder_passed_as_root(visa_root):
    (visa_root / "split_csv/1cls.csv").unlink()
    with pytest.raises(DataError, match="looks like one VisA category folder"):
        list_categories(visa_root / "candle", format="visa")


def _edit_split(root, old, new):
    path = root / "split_csv/1cls.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    lines = path.read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if new and new.split("\n")[0] in line)


def test_visa_row_pointing_at_a_missing_image(visa_root):
    (visa_root / "candle/Data/Images/Normal/0002.JPG").unlink()
    lines = (visa_root / "split_csv/1cls.csv").read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if "Normal/0002.JPG" in text)
    with pytest.raises(DataError) as err:
        _dataset(visa_root, "candle", "train")
    message = str(err.value)
    assert f"1cls.csv, line {line}: image" in message
    assert str(visa_root / "candle/Data/Images/Normal/0002.JPG") in message
    assert "relative to the root" in message
    assert len(_dataset(visa_root, "pcb1", "train")) == 3  # other categories still load


def test_visa_anomaly_row_without_a_mask(visa_root):
    old = "candle/Data/Images/Anomaly/001.JPG,candle/Data/Masks/Anomaly/001.png"
    line = _edit_split(visa_root, old, "candle/Data/Images/Anomaly/001.JPG,")
    with pytest.raises(DataError) as err:
        _dataset(visa_root, "candle", "test")
    message = str(err.value)
    assert f"line {line}: anomaly image candle/Data/Images/Anomaly/001.JPG has no mask" in message


def test_visa_mask_file_missing(visa_root):
    (visa_root / "pcb1/Data/Masks/Anomaly/002.png").unlink()
    with pytest.raises(DataError) as err:
        _dataset(visa_root, "pcb1", "test")
    message = str(err.value)
    assert "mask of anomaly image pcb1/Data/Images/Anomaly/002.JPG" in message
    assert str(visa_root / "pcb1/Data/Masks/Anomaly/002.png") in message and "not found" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("candle,train,normal,candle/Data/Images/Normal/0001.JPG,",
         "candle,train,anomaly,candle/Data/Images/Normal/0001.JPG,x.png",
         "an anomaly image .* in the train split"),
        ("candle,test,normal,candle/Data/Images/Normal/0004.JPG,",
         "candle,test,good,candle/Data/Images/Normal/0004.JPG,", "label 'good' is not"),
        ("candle,test,normal,candle/Data/Images/Normal/0004.JPG,",
         "candle,val,normal,candle/Data/Images/Normal/0004.JPG,", "split 'val' is not"),
        ("candle,test,normal,candle/Data/Images/Normal/0004.JPG,",
         "candle,test,normal,candle/Data/Images/Normal/0004.JPG,m.png", "has a mask"),
        ("candle,test,normal,candle/Data/Images/Normal/0004.JPG,",
         "candle,test,normal,candle/Data/Images/Normal/0004.JPG", "4 fields, expected 5"),
        ("candle,test,normal,candle/Data/Images/Normal/0004.JPG,",
         "candle,test,normal,candle/Data/Images/Normal/0000.JPG,", "is listed again"),
    ],
)
def test_visa_bad_rows_name_file_and_line(visa_root, old, new, expected):
    line = _edit_split(visa_root, old, new)
    with pytest.raises(DataError, match=rf"1cls\.csv, line \d+: .*{expected}") as err:
        _dataset(visa_root, "candle", "train")
    assert f"line {line}" in str(err.value)  # a repeated row: either line, the other is named


def test_visa_wrong_header(visa_root):
    _edit_split(visa_root, "object,split,label,image,mask", "object,set,label,image_path,mask_path")
    with pytest.raises(DataError, match=r"header is object,set,label,image_path,mask_path; "
                                        r"expected object,split,label,image,mask"):
        list_categories(visa_root)


def test_visa_unknown_category_suggests(visa_root):
    with pytest.raises(DataError, match=r"'candel' is not in .*Did you mean 'candle'\?"):
        _dataset(visa_root, "candel", "train")


def test_visa_data_info_table_and_check(visa_root, capsys):
    assert main(["data", "info", str(visa_root), "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{visa_root}: 2 categories (visa layout)"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows["candle"][1:5] == ["4", "2", "2", "2"]  # train, test good, defective, masks
    assert rows["pcb1"][1:5] == ["3", "1", "3", "3"]
    assert "anomaly" in rows["candle"] and "30x20" in rows["candle"] and "JPEG" in rows["candle"]
    assert lines[4].split()[:5] == ["total", "7", "3", "5", "5"]


# ---- BTAD --------------------------------------------------------------------------------------
BTAD_COUNTS = {"01": (3, 2, 2), "02": (2, 1, 3), "03": (4, 2, 1)}


@pytest.fixture
def btad_root(tmp_path):
    return make_btad(tmp_path / "BTAD", BTAD_COUNTS)


def test_btad_is_detected_with_products_counts_and_masks(btad_root):
    assert detect_format(btad_root) == "btad"
    assert list_categories(btad_root) == ["01", "02", "03"]
    for product, (n_train, n_ok, n_ko) in BTAD_COUNTS.items():
        train, test = _dataset(btad_root, product, "train"), _dataset(btad_root, product, "test")
        assert (len(train), train.labels) == (n_train, [0] * n_train)
        assert test.labels == [0] * n_ok + [1] * n_ko
        assert test.defect_types == ["good"] * n_ok + ["ko"] * n_ko
    test = _dataset(btad_root, "01", "test")  # BMP images, PNG masks: paired by stem
    assert test.paths[3] == btad_root / "01/test/ko/0001.bmp"
    assert test.mask_paths[3] == btad_root / "01/ground_truth/ko/0001.png"
    product_03 = _dataset(btad_root, "03", "test")  # BMP images, BMP masks
    assert product_03.mask_paths[2] == btad_root / "03/ground_truth/ko/0000.bmp"
    _, label, mask = test[3]
    assert label == 1 and mask[0, 0, 0] == 1 and mask[0, -1, -1] == 0


def test_btad_missing_mask(btad_root):
    (btad_root / "02/ground_truth/ko/0002.png").unlink()
    with pytest.raises(DataError) as err:
        _dataset(btad_root, "02", "test")
    message = str(err.value)
    assert str(btad_root / "02/test/ko/0002.png") in message and "has no mask" in message
    assert str(btad_root / "02/ground_truth/ko/0002") in message


def test_btad_orphan_mask_and_ok_masks_are_errors(btad_root):
    orphan = btad_root / "03/ground_truth/ko/0042.bmp"
    orphan.write_bytes((btad_root / "03/ground_truth/ko/0000.bmp").read_bytes())
    with pytest.raises(DataError, match=rf"mask {re.escape(str(orphan))} has no image"):
        _dataset(btad_root, "03", "test")
    orphan.unlink()
    good = btad_root / "03/ground_truth/ok"
    good.mkdir()
    (good / "0000.bmp").write_bytes((btad_root / "03/ground_truth/ko/0000.bmp").read_bytes())
    with pytest.raises(DataError, match="good images have no masks"):
        _dataset(btad_root, "03", "test")


def test_btad_two_masks_for_one_image(btad_root):
    source = btad_root / "01/ground_truth/ko/0000.png"
    (source.parent / "0000.bmp").write_bytes(source.read_bytes())
    with pytest.raises(DataError, match=r"0000\.bmp has 2 masks"):
        _dataset(btad_root, "01", "test")


def test_btad_unknown_test_folder(btad_root):
    (btad_root / "01/test/good").mkdir()
    with pytest.raises(DataError, match=r"BTAD test folders are test/ok .* and test/ko"):
        _dataset(btad_root, "01", "test")


def test_btad_data_info(btad_root, capsys):
    assert main(["data", "info", str(btad_root), "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{btad_root}: 3 categories (btad layout)"
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert rows["02"][1:5] == ["2", "1", "3", "3"] and "ko" in rows["02"][5]
    assert "BMP" in rows["01"] and "PNG" in rows["02"]


# ---- MPDD (the MVTec AD layout) ----------------------------------------------------------------
def test_mpdd_is_read_as_the_mvtec_layout(tmp_path, capsys):
    root = make_mpdd(tmp_path / "MPDD")
    assert detect_format(root) == "mvtec"
    assert list_categories(root) == ["bracket_black", "connector", "tubes"]
    test = _dataset(root, "bracket_black", "test")
    assert test.format == "mvtec"
    assert test.defect_types == ["good", "good", "hole", "hole", "scratches"]
    assert test.labels == [0, 0, 1, 1, 1]
    assert test.mask_paths[2] == root / "bracket_black/ground_truth/hole/000_mask.png"
    assert main(["data", "info", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{root}: 3 categories (mvtec layout)"


# ---- detection and forced formats --------------------------------------------------------------
def test_ambiguous_root_asks_for_the_format(tmp_path):
    root = make_visa(tmp_path / "mixed", VISA_PLAN)
    make_mpdd(root)
    with pytest.raises(DataError, match=r"several dataset layouts \(visa, mvtec\).*data\.format"):
        detect_format(root)
    assert list_categories(root, format="visa") == ["candle", "pcb1"]
    assert "connector" in list_categories(root, format="mvtec")


def test_forced_format_that_does_not_fit(tmp_path):
    root = make_mpdd(tmp_path / "MPDD")
    with pytest.raises(DataError, match=r"VisA split file .*1cls\.csv not found"):
        list_categories(root, format="visa")
    with pytest.raises(ConfigError, match="format='coco': unknown dataset layout"):
        list_categories(root, format="coco")


def test_data_info_format_option(tmp_path, capsys):
    root = make_visa(tmp_path / "mixed", VISA_PLAN)
    make_mpdd(root)
    assert main(["data", "info", str(root)]) == 2
    assert "several dataset layouts" in capsys.readouterr().err
    assert main(["data", "info", str(root), "--format", "visa"]) == 0
    assert "(visa layout)" in capsys.readouterr().out
