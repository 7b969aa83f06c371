"""``cl-bench train-one`` and ``cl-bench bench detectors`` end to end on tiny inputs."""

from __future__ import annotations

import pytest

from cl_bench.benchmarks.detectors import measure
from cl_bench.cli import main
from cl_bench.errors import ConfigError

TINY = ["--option", "width=0.25", "--option", "decoder_blocks=[1,1,1]", "--option",
        "ocbe_blocks=1"]


def test_train_one_on_synthetic_prints_aurocs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    code = main(["train-one", "--synthetic", "--synthetic-categories", "1", "--categories",
                 "all", "--detector", "rd4ad", "--image-size", "32", "--epochs", "1",
                 "--weights", "none", "--threads", "2", *TINY])
    assert code == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()
             if "rd4ad" in ln and not ln.startswith("#")]
    assert len(lines) == 1
    image_auroc, pixel_auroc = float(lines[0][2]), float(lines[0][3])
    assert 0.0 <= image_auroc <= 1.0 and 0.0 <= pixel_auroc <= 1.0


def test_train_one_rejects_unknown_category(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    code = main(["train-one", "--synthetic", "--synthetic-categories", "1", "--category",
                 "nope", "--image-size", "32", "--weights", "none"])
    assert code == 2
    assert "category 'nope'" in capsys.readouterr().err


def test_option_parsing() -> None:
    from cl_bench.cli_options import parse_options

    assert parse_options(["weighting=dwa", "student_blocks=[1, 2, 3]", "fusion_alpha=0.7"]) == {
        "weighting": "dwa", "student_blocks": [1, 2, 3], "fusion_alpha": 0.7}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(["weighting"])


def test_bench_measure_reports_every_figure() -> None:
    result = measure({"detector": "hybrid", "backbone": "efficientnet_lite0", "weights": "none",
                      "image_size": 32, "batch_size": 2, "device": "cpu", "steps": 1,
                      "warmup": 0, "threads": 2,
                      "options": {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1],
                                  "student_blocks": [1, 1, 1]}})
    assert result["train_images_per_s"] > 0 and result["infer_images_per_s"] > 0
    assert result["trainable_parameters"] > 0
    assert result["peak_memory_mb"] > 0 and result["memory_kind"] == "max_rss"


def test_bench_measure_with_a_full_teacher_cache_skips_the_teacher() -> None:
    from cl_bench.benchmarks.detectors import measure

    job = {"detector": "rd4ad", "backbone": "efficientnet_lite0", "weights": "none",
           "image_size": 32, "batch_size": 2, "device": "cpu", "steps": 1, "warmup": 0,
           "threads": 2, "options": {"width": 0.25, "decoder_blocks": [1, 1, 1],
                                     "ocbe_blocks": 1}}
    plain, cached = measure(job), measure({**job, "cache": True})
    assert plain["cache"] is False and cached["cache"] is True
    # the FLOP counter sees the teacher's forward only without the cache
    assert cached["train_gflop_per_image"] < plain["train_gflop_per_image"]


def test_train_one_trains_rd4ad_at_an_image_size_that_is_not_a_multiple_of_32(
        tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    code = main(["train-one", "--synthetic", "--synthetic-categories", "1", "--categories",
                 "all", "--detector", "rd4ad", "--image-size", "50", "--epochs", "1",
                 "--weights", "none", "--threads", "1", *TINY])
    assert code == 0, capsys.readouterr().err


def test_bench_measure_at_image_size_33() -> None:
    result = measure({"detector": "hybrid", "backbone": "efficientnet_lite0", "weights": "none",
                      "image_size": 33, "batch_size": 2, "device": "cpu", "steps": 1,
                      "warmup": 0, "threads": 1,
                      "options": {"reverse_width": 0.25, "decoder_blocks": [1, 1, 1],
                                  "student_blocks": [1, 1, 1]}})
    assert result["train_images_per_s"] > 0 and result["infer_images_per_s"] > 0
