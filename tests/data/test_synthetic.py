"""Synthetic MVTec-like data: layout, exact masks, determinism, variation, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_bench.data import CATEGORY_NAMES, ImageCache, MVTecDataset, ensure_synthetic, synthesize
from cl_bench.data import synthetic as synthetic_module
from cl_bench.data.synthetic import CATEGORIES, render_image
from cl_bench.errors import ConfigError, DataError

SMALL = {"n_categories": 3, "n_train": 4, "n_test": 6, "size": 32, "seed": 0}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("synth") / "set", **SMALL)


def test_layout_loads_with_mvtec_dataset(small_set):
    assert sorted(p.name for p in small_set.iterdir() if p.is_dir()) == sorted(CATEGORY_NAMES[:3])
    for name in CATEGORY_NAMES[:3]:
        train = MVTecDataset(small_set, name, "train", 32, cache=ImageCache())
        test = MVTecDataset(small_set, name, "test", 32, cache=ImageCache())
        assert len(train) == 4 and len(test) == 6
        assert test.labels.count(0) == 3 and test.labels.count(1) == 3
        assert len({d for d in test.defect_types if d != "good"}) == 3  # one of each type
        test.validate()
        for image, label, mask in test:
            assert image.shape == (3, 32, 32)
            assert (mask.sum() > 0) == (label == 1)


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(tmp_path):
    params = {**SMALL, "n_categories": 2}
    first = synthesize(tmp_path / "a", **params)
    second = synthesize(tmp_path / "b", **params)
    third = synthesize(tmp_path / "c", **{**params, "seed": 1})
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert any((first / f).read_bytes() != (third / f).read_bytes() for f in files)


def test_a_category_does_not_depend_on_how_many_are_written(tmp_path):
    two = synthesize(tmp_path / "two", **{**SMALL, "n_categories": 2})
    one = synthesize(tmp_path / "one", **{**SMALL, "n_categories": 1})
    name = CATEGORY_NAMES[0]
    for path in (one / name).rglob("*.png"):
        assert path.read_bytes() == (two / name / path.relative_to(one / name)).read_bytes()


@pytest.mark.parametrize("spec", CATEGORIES, ids=lambda spec: spec.name)
def test_masks_are_exactly_the_changed_pixels(spec):
    for index, defect in enumerate(spec.defects):
        clean, _ = render_image(spec.name, 48, 3, "test", 10 + index)
        broken, mask = render_image(spec.name, 48, 3, "test", 10 + index, defect)
        changed = np.abs(broken.astype(int) - clean.astype(int)).max(axis=2) > 0
        assert mask.sum() >= 4
        assert np.array_equal(mask, changed)


def test_normal_images_vary_and_categories_look_different():
    images = [render_image("disc", 32, 0, "train", i)[0].astype(float) for i in range(4)]
    assert min(np.abs(a - b).mean() for a in images for b in images if a is not b) > 1.0
    means = [
        render_image(name, 32, 0, "train", 0)[0].reshape(-1, 3).mean(0) for name in CATEGORY_NAMES
    ]
    distances = [np.abs(a - b).sum() for i, a in enumerate(means) for b in means[i + 1 :]]
    assert min(distances) > 5  # no two categories share a colour scheme


def test_defects_vary_in_size_and_include_faint_ones():
    areas, contrasts = [], []
    for spec in CATEGORIES[:5]:
        for index in range(8):
            defect = spec.defects[index % len(spec.defects)]
            clean, _ = render_image(spec.name, 64, 0, "test", index)
            broken, mask = render_image(spec.name, 64, 0, "test", index, defect)
            areas.append(mask.mean())
            contrasts.append(np.abs(broken.astype(int) - clean.astype(int))[mask].mean())
    assert max(areas) > 8 * min(areas)
    assert min(contrasts) < 20 < max(contrasts)  # some defects are within a few grey levels


def test_bad_parameters(tmp_path):
    with pytest.raises(ConfigError, match="n_categories=16"):
        synthesize(tmp_path / "x", n_categories=16)
    with pytest.raises(ConfigError, match="n_test=1"):
        synthesize(tmp_path / "x", n_test=1)
    with pytest.raises(ConfigError, match="size"):
        synthesize(tmp_path / "x", size=8)
    with pytest.raises(ConfigError, match="unknown parameter"):
        ensure_synthetic(tmp_path, colour="red")


def test_refuses_a_foreign_folder_and_replaces_an_earlier_set(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="not an empty folder or an earlier synthetic set"):
        synthesize(foreign, **SMALL)
    out = synthesize(tmp_path / "set", **{**SMALL, "n_categories": 2})
    synthesize(out, **{**SMALL, "n_categories": 1})
    assert sorted(p.name for p in out.iterdir()) == [CATEGORY_NAMES[0], "synthetic.json"]
    assert json.loads((out / "synthetic.json").read_text())["n_categories"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ensure_synthetic_generates_once(tmp_path, monkeypatch):
    params = {**SMALL, "n_categories": 1}
    root = ensure_synthetic(tmp_path, **params)
    assert root.parent == tmp_path and (root / CATEGORY_NAMES[0] / "train" / "good").is_dir()

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a cached set")

    monkeypatch.setattr(synthetic_module, "synthesize", fail)
    assert ensure_synthetic(tmp_path, **params) == root
    monkeypatch.undo()
    other = ensure_synthetic(tmp_path, **{**params, "seed": 5})
    assert other != root and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [root.name, other.name]
    )


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    assert synthetic_module.default_cache_dir() == tmp_path / "synthetic"
    monkeypatch.delenv("CL_BENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert synthetic_module.default_cache_dir() == tmp_path / "home/.cache/cl-bench/synthetic"
