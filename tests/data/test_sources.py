"""Task sequences across datasets: named sources, tasks ``<source>/<category>``, config keys."""

from __future__ import annotations

import pytest
from data_helpers import make_category
from layout_fixtures import VISA_PLAN, make_btad, make_visa

from cl_bench.config import validate
from cl_bench.data import ImageCache, Source, Sources, build_benchmark, list_categories
from cl_bench.errors import ConfigError, DataError
from cl_bench.run.experiment import data_root


@pytest.fixture
def two_roots(tmp_path):
    mvtec = tmp_path / "mvtec"
    make_category(mvtec, "cable", seed=1)
    make_category(mvtec, "bottle", seed=2)
    visa = make_visa(tmp_path / "visa", VISA_PLAN)
    return mvtec, visa


def _sources(two_roots, first="mvtec", second="visa"):
    mvtec, visa = two_roots
    return Sources([Source(mvtec, "mvtec", first), Source(visa, "auto", second)])


def _bench(spec, **options):
    return build_benchmark(spec, image_size=16, cache=ImageCache(max_mb=0), **options)


def test_task_names_keep_their_dataset_in_the_stated_order(two_roots):
    tasks = _bench(_sources(two_roots))
    expected = ["mvtec/bottle", "mvtec/cable", "visa/candle", "visa/pcb1"]
    assert tasks.categories == expected
    assert [e.category for e in tasks.test_stream] == expected
    assert [d.format for d in tasks.test_datasets] == ["mvtec", "mvtec", "visa", "visa"]
    assert [d.category for d in tasks.test_datasets] == ["bottle", "cable", "candle", "pcb1"]
    attribute = tasks.test_stream[3].dataset.category
    assert set(attribute) == {"visa/pcb1"}  # the per-item attribute replay buffers keep


def test_stated_order_is_the_sources_order_not_the_alphabet(two_roots):
    tasks = _bench(_sources(two_roots, first="zeta", second="alpha"))
    assert tasks.categories == ["zeta/bottle", "zeta/cable", "alpha/candle", "alpha/pcb1"]


def test_explicit_order_random_order_and_selection_use_task_names(two_roots):
    spec = _sources(two_roots)
    order = ["visa/pcb1", "mvtec/cable", "visa/candle"]
    assert _bench(spec, order=order).categories == order
    shuffled = _bench(spec, order="random", seed=3).categories
    assert sorted(shuffled) == ["mvtec/bottle", "mvtec/cable", "visa/candle", "visa/pcb1"]
    chosen = _bench(spec, categories=["visa/candle", "mvtec/cable"]).categories
    assert chosen == ["mvtec/cable", "visa/candle"]
    with pytest.raises(DataError, match=r"'visa/candel' not found.*Did you mean 'visa/candle'"):
        _bench(spec, categories=["visa/candel"])


def test_per_source_categories_and_three_layouts(two_roots, tmp_path):
    mvtec, visa = two_roots
    btad = make_btad(tmp_path / "btad", {"01": (2, 1, 1), "03": (2, 1, 1)})
    spec = [Source(visa, "visa", "visa", ("pcb1",)), Source(btad, "auto", "btad"),
            Source(mvtec, "auto", "mvtec", ("cable",))]
    assert list_categories(spec) == ["visa/pcb1", "btad/01", "btad/03", "mvtec/cable"]
    with pytest.raises(DataError, match=r"category 'pcb9' not found in source 'visa'"):
        list_categories([Source(visa, "visa", "visa", ("pcb9",))])


def test_one_root_keeps_plain_task_names(two_roots):
    mvtec, _ = two_roots
    assert _bench(mvtec).categories == ["bottle", "cable"]
    assert _bench(Source(mvtec)).categories == ["bottle", "cable"]


def test_two_sources_with_one_name_are_refused(two_roots):
    mvtec, _ = two_roots
    with pytest.raises(DataError, match="tasks named twice: same/bottle"):
        list_categories([Source(mvtec, name="same"), Source(mvtec, name="same")])


# ---- configuration -----------------------------------------------------------------------------
def _raw(**data):
    return {"data": {"source": "folder", **data}, "model": {"weights": "none"}}


def test_config_with_sources_resolves_to_sources(two_roots):
    mvtec, visa = two_roots
    cfg = validate(_raw(sources=[{"name": "mvtec", "root": str(mvtec), "format": "mvtec"},
                                 {"name": "visa", "root": str(visa), "categories": ["pcb1"]}]))
    spec = data_root(cfg, log=lambda _: None)
    assert isinstance(spec, Sources) and str(spec) == f"mvtec={mvtec}; visa={visa}"
    assert list_categories(spec) == ["mvtec/bottle", "mvtec/cable", "visa/pcb1"]


def test_config_with_root_and_format_keeps_working(two_roots):
    _, visa = two_roots
    cfg = validate(_raw(root=str(visa), format="visa"))
    spec = data_root(cfg, log=lambda _: None)
    assert spec == Source(visa, "visa") and str(spec) == str(visa)
    assert list_categories(spec) == ["candle", "pcb1"]
    old = validate(_raw(root=str(visa)))  # a config written before data.format existed
    assert old.data.format == "auto" and old.data.sources is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"root": "/x", "sources": [{"name": "a", "root": "/y"}]}, "not both"),
        ({"source": "synthetic", "sources": [{"name": "a", "root": "/y"}]},
         "needs data.source: folder"),
        ({"format": "visa", "sources": [{"name": "a", "root": "/y"}]}, "own format"),
        ({"sources": [{"name": "a", "root": "/y"}, {"name": "a", "root": "/z"}]}, "used twice"),
        ({"sources": [{"name": "a/b", "root": "/y"}]}, "data.sources.0.name"),
        ({"sources": [{"name": "a", "root": "/y", "format": "coco"}]}, "data.sources.0.format"),
        ({"format": "coco", "root": "/y"}, "data.format"),
        ({"sources": []}, "data.sources"),
    ],
)
def test_bad_source_configs_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        validate(_raw(**data))


def test_missing_source_root_names_its_key(two_roots, tmp_path):
    mvtec, _ = two_roots
    cfg = validate(_raw(sources=[{"name": "mvtec", "root": str(mvtec)},
                                 {"name": "visa", "root": str(tmp_path / "nowhere")}]))
    with pytest.raises(ConfigError, match=r"data\.sources\[1\]\.root: folder .*nowhere "
                                          r"\(source 'visa'\) does not exist"):
        data_root(cfg, log=lambda _: None)


def test_experiment_configs_name_the_protocol_tasks():
    from pathlib import Path

    from cl_bench.config import load_config
    from cl_bench.data.visa import CATEGORIES as VISA_CATEGORIES

    experiments = Path(__file__).resolve().parents[2] / "experiments"
    visa = load_config(experiments / "visa.yaml", ["data.root=/data/VisA"])
    assert visa.data.format == "visa" and visa.data.categories == list(VISA_CATEGORIES)
    assert (visa.data.image_size, visa.model.backbone) == (256, "wide_resnet50_2")
    both = load_config(experiments / "mvtec_visa.yaml")
    mvtec, visa_source = both.data.sources
    assert (mvtec.name, mvtec.format, len(mvtec.categories)) == ("mvtec", "mvtec", 15)
    assert (visa_source.name, visa_source.format) == ("visa", "visa")
    assert visa_source.categories == list(VISA_CATEGORIES)
    assert both.data.order == "alphabetical" and both.data.root is None


def test_reversed_runs_the_task_names_backwards(two_roots):
    names = ["mvtec/bottle", "mvtec/cable", "visa/candle", "visa/pcb1"]
    assert _bench(_sources(two_roots), order="reversed").categories == names[::-1]
    chosen = _bench(_sources(two_roots), order="reversed", categories=["visa/pcb1", "mvtec/cable",
                                                                         "mvtec/bottle"])
    assert chosen.categories == ["visa/pcb1", "mvtec/cable", "mvtec/bottle"]
