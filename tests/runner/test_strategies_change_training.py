"""Every continual strategy changes training: its regulariser term is non-zero after the first
task, its records differ from naive fine-tuning on the same seed (and equal them before the
strategy has anything to act on), and the optimizer restarts at each task."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.data import build_benchmark, ensure_synthetic
from cl_bench.run.experiment import RunContext, run_experiment
from cl_bench.run.steps import build_strategy

REGULARISED = ("ewc", "si", "feature_distillation", "mas")
STRATEGIES = ("replay", "cumulative", "agem", *REGULARISED)
#: three epochs of one step each per task: a penalty and its gradient are 0 at the first step
#: of a task (weights = previous weights); they act from the second step on
TRAIN = {"train.epochs": 3, "eval.metrics": ["image_auroc", "pixel_auroc"],
         "eval.saved_maps_per_task": 0,
         # Adam for STPM too (its paper's SGD is its registered default): the step counts below
         # are Adam's
         "train.optimizer": {"name": "adam", "lr": 0.005, "betas": [0.5, 0.999]}}


class LossProbe(SupervisedPlugin):
    """Records ``strategy.loss`` in ``before_backward`` per task (placed around a plugin)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: dict[int, list[float]] = {}

    def before_backward(self, strategy, **kwargs) -> None:
        task = strategy.clock.train_exp_counter
        self.losses.setdefault(task, []).append(float(strategy.loss.detach()))


def _strategy(tiny_config, tmp_path, name: str, **overrides):
    cfg = tiny_config(**{"strategy.name": name, **TRAIN, **overrides})
    ctx = RunContext(cfg, tmp_path, "x", torch.device("cpu"), None, None, print, "a", [])
    return build_strategy(ctx, "stpm", 0, progress=False)


def _tasks():
    root = ensure_synthetic(n_categories=2, n_train=4, n_test=4, size=32)
    return build_benchmark(root, image_size=32).benchmark.train_stream


@pytest.mark.parametrize("name", REGULARISED)
def test_regulariser_term_is_zero_in_task_0_and_positive_after(tiny_config, tmp_path,
                                                               name: str) -> None:
    strategy = _strategy(tiny_config, tmp_path, name)
    before, after = LossProbe(), LossProbe()
    strategy.plugins = [before, strategy.plugins[0], after, *strategy.plugins[1:]]
    for experience in _tasks():
        strategy.train(experience)
    term = {task: [a - b for a, b in zip(after.losses[task], before.losses[task], strict=True)]
            for task in (0, 1)}
    assert term[0] == [0.0] * 3  # nothing to protect during the first task
    assert abs(term[1][0]) < 1e-6  # weights = previous weights at the first step of task 1
    assert min(term[1][1:]) > 1e-7  # then the penalty acts


def test_records_differ_from_naive_on_the_same_seed(tiny_config, tmp_path) -> None:
    def values(name: str) -> pd.DataFrame:
        run = run_experiment(tiny_config(**{"strategy.name": name, **TRAIN}),
                             out_root=tmp_path / name, log=lambda _: None, progress=False)
        records = pd.read_csv(run / "records.csv")
        return records.set_index(["step", "eval_task", "metric"])["value"].sort_index()

    naive = values("naive")
    for name in STRATEGIES:
        got = values(name)
        assert got.index.equals(naive.index)
        first = got.index.get_level_values("step") <= 0
        # identical until the strategy has an earlier task to act on ...
        pd.testing.assert_series_equal(got[first], naive[first])
        # ... then different
        assert (got[~first] - naive[~first]).abs().max() > 0, name


@pytest.mark.parametrize("reset", [True, False])
def test_optimizer_restarts_at_each_task(tiny_config, tmp_path, reset: bool) -> None:
    strategy = _strategy(tiny_config, tmp_path, "naive",
                         **{"train.reset_optimizer": reset,
                            "train.optimizer": {"name": "adam", "lr": 0.005}})
    for experience in _tasks():
        strategy.train(experience)
    steps = {int(s["step"]) for s in strategy.optimizer.state_dict()["state"].values()}
    assert steps == ({3} if reset else {6})  # Adam's step count: this task's 3 steps, or 3 + 3


def test_defaults_and_renamed_key(tiny_config) -> None:
    from cl_bench.errors import ConfigError

    replay = tiny_config().strategy.replay
    assert (replay.mode, replay.memory_fraction) == ("equal_compute", 0.5)
    with pytest.raises(ConfigError, match=r"strategy\.si\.xi"):
        tiny_config(**{"strategy.si": {"eps": 0.001}})
