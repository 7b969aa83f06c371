"""``cl-bench bench metrics`` on a tiny task: prints both timings, the ratio, agreement, memory."""

from __future__ import annotations

import re

from cl_bench.benchmarks.metrics import synthetic_task
from cl_bench.cli import main


def test_bench_metrics_prints_timings_ratio_and_memory(capsys) -> None:
    assert main(["bench", "metrics", "--maps", "4", "--size", "32", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"reference .*: \d+\.\d+ s", out)
    assert re.search(r"fast, one ranking on cpu .*: \d+\.\d+ s", out)
    assert re.search(r"speed-up: \d+\.\dx", out)
    assert "peak memory" in out
    for diff in re.findall(r"rel (\S+)", out):
        assert float(diff) < 1e-9


def test_bench_metrics_rejects_bad_options(capsys) -> None:
    assert main(["bench", "metrics", "--maps", "1"]) == 2
    assert "--maps must be >= 2" in capsys.readouterr().err


def test_synthetic_task_has_both_classes() -> None:
    maps, masks = synthetic_task(4, 32, seed=1)
    assert maps.shape == masks.shape == (4, 32, 32)
    assert masks[1::2].any() and not masks[0::2].any()
    assert maps.dtype.name == "float32"
