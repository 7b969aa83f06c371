"""A look-alike stream from real images (``../shared/data``, skipped where absent): five MVTec AD
categories from ``mvtec_ad_mini``, then a VisA-layout set of the same five objects photographed
apart (``mvtec_ad_fullres``'s bottle, metal_nut, screw, zipper at native resolution and the
Intel toy hazelnut), in one sequence of ten tasks through ``data.sources``."""

from __future__ import annotations

from pathlib import Path

from layout_fixtures import mvtec_as_visa

from cl_bench.config import validate
from cl_bench.data import build_benchmark
from cl_bench.run.experiment import data_root

OBJECTS = ("bottle", "hazelnut", "metal_nut", "screw", "zipper")


def lookalike_sources(shared: Path, dest: Path) -> list[dict]:
    """``data.sources`` of the look-alike stream; the VisA view is written into ``dest``."""
    twins = {name: shared / "mvtec_ad_fullres" / name for name in OBJECTS if name != "hazelnut"}
    twins["hazelnut"] = shared / "hazelnut_toy" / "hazelnut"
    visa = mvtec_as_visa(dest, dict(sorted(twins.items())))
    return [{"name": "mvtec", "root": str(shared / "mvtec_ad_mini"), "format": "mvtec",
             "categories": list(OBJECTS)},
            {"name": "visa", "root": str(visa), "format": "visa"}]


def test_mvtec_then_a_visa_view_of_lookalikes_is_one_sequence(shared_data, tmp_path):
    cfg = validate({"experiment": "lookalike_real",
                    "data": {"source": "folder", "image_size": 32, "order": "alphabetical",
                             "sources": lookalike_sources(shared_data, tmp_path / "visa")}})
    tasks = build_benchmark(data_root(cfg, log=lambda _: None), image_size=32)
    assert list(tasks.categories) == [f"mvtec/{n}" for n in OBJECTS] + [f"visa/{n}"
                                                                         for n in OBJECTS]
    assert not any(p.is_file() and not p.is_symlink() for p in (tmp_path / "visa").rglob("*.*")
                   if p.suffix != ".csv")  # linked, never copied
    for source, root in (("mvtec", shared_data / "mvtec_ad_mini"),
                         ("visa", None)):
        for name in OBJECTS:
            index = list(tasks.categories).index(f"{source}/{name}")
            folder = (root / name if root is not None else
                      shared_data / ("hazelnut_toy" if name == "hazelnut" else "mvtec_ad_fullres")
                      / name)
            train, test = tasks.train_datasets[index], tasks.test_datasets[index]
            assert len(train) == len(list((folder / "train" / "good").iterdir()))
            n_test = sum(len(list(d.iterdir())) for d in (folder / "test").iterdir())
            assert len(test) == n_test
            _, label, mask = test[len(test) - 1]  # the last test image is defective
            assert label == 1 and mask.sum() > 0
