"""Progress lines without a terminal: per epoch or every N seconds, and each evaluation's start."""

from __future__ import annotations

import re

import pytest

from cl_bench.progress import ProgressPlugin
from cl_bench.progress_settings import Progress, resolve_progress
from cl_bench.run.experiment import run_experiment


def _run(tiny_config, tmp_path, interval: float, **overrides) -> list[str]:
    said: list[str] = []
    run_experiment(tiny_config(**{"train.epochs": 3, **overrides}), out_root=tmp_path,
                   log=said.append, progress=Progress("lines", interval_s=interval))
    return said


def test_lines_every_epoch_and_at_every_evaluation(tiny_config, tmp_path) -> None:
    said = _run(tiny_config, tmp_path, interval=0)
    train = [line for line in said if " train " in line]
    assert len(train) == 2 * 3  # two tasks, three epochs
    pattern = (r"^\[stpm seed 0\] train task 1/2 '\w+' epoch 1/3: loss [0-9.e+-]+ "
               r"\(loss_forward [0-9.e+-]+\), [0-9.]+ images/s$")
    assert re.match(pattern, train[0]), train[0]
    evaluations = [line for line in said if "evaluating" in line]
    assert evaluations[0] == "[stpm seed 0] evaluating the untrained model on 2 task(s) (8 test " \
                             "images)"
    assert [e.split(" on ")[0].split("evaluating ")[1] for e in evaluations[1:]] == [
        f"after task {i}/2 {name!r}" for i, name in enumerate(sorted(_names(said)), 1)]
    first_eval = said.index(evaluations[0])
    first_train = said.index(train[0])
    assert first_eval < first_train  # said when the evaluation starts, not when it ends


def _names(said: list[str]) -> set[str]:
    return {m.group(1) for line in said if (m := re.search(r"task \d/2 '(\w+)'", line))}


def test_interval_keeps_one_line_per_task_when_epochs_are_short(tiny_config, tmp_path) -> None:
    said = _run(tiny_config, tmp_path, interval=3600)
    train = [line for line in said if " train " in line]
    assert [re.search(r"epoch (\d)/3", t).group(1) for t in train] == ["3", "3"]


def test_auto_is_lines_without_a_terminal_and_bars_on_one(monkeypatch) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert resolve_progress(None).mode == "lines"
    assert resolve_progress("auto").mode == "lines"
    assert ProgressPlugin("x").lines and not ProgressPlugin("x").enabled
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert resolve_progress(None).mode == "bar"
    assert resolve_progress(False).mode == "off" and resolve_progress(True).mode == "bar"
    with pytest.raises(ValueError, match="choose one of auto, bar, lines, off"):
        resolve_progress("loud")


def test_off_says_nothing_but_the_steps(tiny_config, tmp_path) -> None:
    said: list[str] = []
    run_experiment(tiny_config(), out_root=tmp_path, log=said.append, progress="off")
    assert not any(" train " in line or "evaluating" in line for line in said)
