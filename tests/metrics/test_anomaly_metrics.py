"""Reference anomaly metrics: scikit-learn equality, a brute-force AU-PRO, hand cases, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from metrics_testdata import brute_force_au_pro, random_task
from sklearn.metrics import average_precision_score, roc_auc_score

from cl_bench.errors import DataError
from cl_bench.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    au_pro,
    image_ap,
    image_auroc,
    image_f1_max,
    pixel_ap,
    pixel_auroc,
    pixel_f1_max,
    pro_curve,
    trapezoid_area,
)


# ------------------------------------------------------------------- scikit-learn equality
@pytest.mark.parametrize("seed", range(4))
def test_image_metrics_equal_sklearn_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=40).round(1)  # ties
    labels = rng.integers(0, 2, 40)
    labels[:2] = [0, 1]
    assert image_auroc(scores, labels) == roc_auc_score(labels, scores)
    assert image_ap(scores, labels) == average_precision_score(labels, scores)
    assert image_auroc(torch.from_numpy(scores), torch.from_numpy(labels)) == roc_auc_score(
        labels, scores)


@pytest.mark.parametrize("seed", range(3))
def test_pixel_metrics_equal_sklearn_exactly(seed: int) -> None:
    maps, masks = random_task(seed, quantize=0.25 if seed else None)
    assert pixel_auroc(maps, masks) == roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_ap(maps, masks) == average_precision_score(masks.ravel(), maps.ravel())
    # (N,1,H,W) torch input gives the same
    assert pixel_auroc(torch.from_numpy(maps)[:, None], torch.from_numpy(masks)[:, None]) == (
        roc_auc_score(masks.ravel(), maps.ravel()))


def test_f1_max_hand_case() -> None:
    # thresholds 0.9: P=1 R=1/2 F1=2/3; 0.8: P=1/2 R=1/2; 0.7: P=2/3 R=1 F1=0.8
    scores, labels = [0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]
    assert image_f1_max(scores, labels) == pytest.approx(0.8, abs=1e-15)
    assert pixel_f1_max(np.array(scores).reshape(1, 2, 2), np.array(labels).reshape(1, 2, 2)) == (
        pytest.approx(0.8, abs=1e-15))


# ------------------------------------------------------------------------------ AU-PRO
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [0.3, 0.05, 1.0])
def test_au_pro_equals_brute_force(seed: int, limit: float) -> None:
    maps, masks = random_task(seed, quantize=0.5 if seed % 2 else None)
    assert au_pro(maps, masks, limit) == pytest.approx(brute_force_au_pro(maps, masks, limit),
                                                       rel=1e-9, abs=1e-12)


def test_au_pro_perfect_and_reversed_maps() -> None:
    _, masks = random_task(0)
    assert au_pro(masks.astype(np.float32), masks) == 1.0
    assert au_pro((~masks).astype(np.float32), masks) == 0.0
    assert pixel_auroc(masks.astype(np.float32), masks) == 1.0
    assert pixel_auroc((~masks).astype(np.float32), masks) == 0.0  # not flipped to 1


def test_au_pro_weights_regions_equally_hand_case() -> None:
    # regions A = pixels 0-2 (size 3), B = pixel 4 (size 1); defect-free pixels 3 and 5
    masks = np.array([[[1, 1, 1, 0, 1, 0]]])
    maps = np.array([[[0.9, 0.3, 0.3, 0.5, 0.8, 0.1]]], dtype=np.float32)
    # curve (0,0) (0,1/6) (0,2/3) (0.5,2/3) (0.5,1) (1,1): flat 2/3 up to FPR 0.5
    assert au_pro(maps, masks, 0.3) == pytest.approx(2 / 3, abs=1e-15)
    assert au_pro(maps, masks, 1.0) == pytest.approx(5 / 6, abs=1e-15)
    # pixel 3 tied with A's last two pixels: diagonal (0,2/3) -> (0.5,1), interpolated at 0.3
    maps[0, 0, 3] = 0.3
    assert au_pro(maps, masks, 0.3) == pytest.approx(23 / 30, abs=1e-15)


def test_pro_curve_points() -> None:
    masks = np.array([[[1, 1, 1, 0, 1, 0]]])
    maps = np.array([[[0.9, 0.3, 0.3, 0.5, 0.8, 0.1]]], dtype=np.float32)
    fpr, pro = pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(pro, [0, 1 / 6, 2 / 3, 2 / 3, 1, 1, 1])


def test_constant_map_follows_the_definitions() -> None:
    _, masks = random_task(1)
    const = np.full(masks.shape, 0.7, dtype=np.float32)
    assert pixel_auroc(const, masks) == 0.5
    assert pixel_ap(const, masks) == pytest.approx(masks.mean(), abs=1e-15)
    assert au_pro(const, masks) == pytest.approx(0.15, abs=1e-15)  # straight line to (1, 1)
    assert image_auroc([1.0, 1.0, 1.0], [0, 1, 1]) == 0.5


def test_regions_are_8_connected() -> None:
    # (0,0) and (1,1) touch diagonally: ONE region with 8-connectivity; (3,3) is a second one
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 3, 3] = True
    maps = np.zeros((1, 4, 4), dtype=np.float32)
    maps[0, 0, 0] = 1.0
    _, pro = pro_curve(maps, masks)
    assert pro[1] == pytest.approx(0.25)  # (1/2 + 0) / 2 regions; 4-connectivity: 1/3


def test_trapezoid_interpolates_at_the_limit() -> None:
    x, y = np.array([0.0, 0.2, 0.4, 1.0]), np.array([0.0, 0.5, 1.0, 1.0])
    # up to 0.3: 0.2*0.25 + 0.1*(0.5+0.75)/2
    assert trapezoid_area(x, y, 0.3) == pytest.approx(0.05 + 0.0625, abs=1e-15)
    assert trapezoid_area(x, y, 0.4) == pytest.approx(0.05 + 0.15, abs=1e-15)


# ------------------------------------------------------------------------ undefined cases
def test_no_defective_images_gives_nan_and_names_the_task() -> None:
    with pytest.warns(UndefinedMetricWarning, match=r"task 'bottle'.*no defective images"):
        assert np.isnan(image_auroc([0.1, 0.2], [0, 0], task="bottle"))
    with pytest.warns(UndefinedMetricWarning, match="no good images"):
        assert np.isnan(image_ap([0.1, 0.2], [1, 1], task="bottle"))


def test_no_defect_pixels_gives_nan_for_pixel_metrics() -> None:
    maps = np.random.default_rng(0).random((2, 4, 4)).astype(np.float32)
    masks = np.zeros((2, 4, 4), dtype=np.uint8)
    for fn in (pixel_auroc, pixel_ap, au_pro, pixel_f1_max):
        with pytest.warns(UndefinedMetricWarning, match="task 'grid'.*no defective pixels"):
            assert np.isnan(fn(maps, masks, task="grid"))
    with pytest.warns(UndefinedMetricWarning, match="no good pixels"):
        assert np.isnan(au_pro(maps, np.ones_like(masks)))


def test_defined_case_raises_no_warning() -> None:
    maps, masks = random_task(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        au_pro(maps, masks)
        image_auroc([0.1, 0.9], [0, 1])


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("maps", "masks", "message"), [
    (np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), "differ in shape"),
    (np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4)), r"shape \(N,1,H,W\)"),
    (np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2)), "4 non-finite value"),
    (np.zeros((1, 2, 2)), np.array([[[0, 255], [0, 0]]]), r"binary.*255"),
    (np.zeros((0, 2, 2)), np.zeros((0, 2, 2)), "empty"),
    (np.array([["a"]]), np.zeros((1, 1)), "numeric"),
])
def test_bad_pixel_input_is_rejected_with_a_clear_message(maps, masks, message) -> None:
    with pytest.raises(MetricInputError, match=message):
        pixel_auroc(maps, masks, task="cable")
    with pytest.raises(DataError, match="task 'cable'"):
        au_pro(maps, masks, task="cable")


def test_bad_image_input_is_rejected() -> None:
    with pytest.raises(MetricInputError, match="differ in length"):
        image_auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(MetricInputError, match=r"binary.*2"):
        image_auroc([0.1, 0.2], [0, 2])
    with pytest.raises(MetricInputError, match="non-finite"):
        image_ap([0.1, np.inf], [0, 1])
    with pytest.raises(MetricInputError, match="numpy array or torch tensor"):
        image_ap("0.1", [0, 1])
    with pytest.raises(MetricInputError, match="fpr_limit"):
        au_pro(np.zeros((1, 2, 2)), np.eye(2)[None], fpr_limit=0.0)
