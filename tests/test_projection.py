"""The projected whole-run time from throughput (``cl-bench bench detectors --project-epochs``)."""

from __future__ import annotations

import pytest

from cl_bench.benchmarks.detectors import print_projection
from cl_bench.benchmarks.projection import format_duration, project_run


def test_projection_formula() -> None:
    # 2 epochs x 3629 images at 10 img/s; 16 evaluations x 1725 images at 40 img/s
    projected = project_run(10.0, 40.0, epochs=2)
    assert projected["train_s"] == pytest.approx(2 * 3629 / 10.0)
    assert projected["eval_s"] == pytest.approx(16 * 1725 / 40.0)
    assert projected["total_s"] == pytest.approx(725.8 + 690.0)
    small = project_run(1.0, 1.0, epochs=1, train_images=10, test_images=5, tasks=2)
    assert small == {"train_s": 10.0, "eval_s": 15.0, "total_s": 25.0}


def test_projection_with_the_teacher_cache() -> None:
    # first epoch / first evaluation at the uncached rate, the rest at the cached rate
    projected = project_run(10.0, 40.0, epochs=3, cached_train_images_per_s=20.0,
                            cached_infer_images_per_s=80.0)
    assert projected["train_s"] == pytest.approx(3629 / 10.0 + 2 * 3629 / 20.0)
    assert projected["eval_s"] == pytest.approx(1725 / 40.0 + 15 * 1725 / 80.0)
    uncached = project_run(10.0, 40.0, epochs=3)
    assert projected["total_s"] < uncached["total_s"]


@pytest.mark.parametrize(("train", "infer", "epochs"), [(0.0, 1.0, 1), (1.0, -1.0, 1),
                                                        (1.0, 1.0, 0)])
def test_projection_rejects_bad_input(train, infer, epochs) -> None:
    with pytest.raises(ValueError, match="must be"):
        project_run(train, infer, epochs)


def test_format_duration() -> None:
    assert format_duration(41.4) == "41s"
    assert format_duration(725) == "12m 05s"
    assert format_duration(3 * 3600 + 25 * 60 + 10) == "3h 25m"


def test_print_projection_lines(capsys) -> None:
    rows = [{"detector": "stpm", "cache": False, "train_images_per_s": 3629 / 3600,
             "infer_images_per_s": 1e9},
            {"detector": "stpm", "cache": True, "train_images_per_s": 3629 / 1800,
             "infer_images_per_s": 1e9}]
    print_projection(rows, epochs=2, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert "2 epochs/task" in lines[0]
    assert "stpm" in lines[1] and "cache off" in lines[1] and "train   2h 00m" in lines[1]
    assert "cache on" in lines[2] and "train   1h 30m" in lines[2]
