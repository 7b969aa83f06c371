"""cumulative, MAS and A-GEM: what each changes in training, and resume with identical records
(the records-differ-from-naive and penalty tests are in test_strategies_change_training.py)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.config import validate
from cl_bench.data import build_benchmark, ensure_synthetic
from cl_bench.run.experiment import RunContext, run_experiment
from cl_bench.run.steps import build_strategy
from strategies.continual.agem import SeededAGEMPlugin
from strategies.training.checkpoint import read_checkpoint


def _synthetic(categories: int = 3):
    return ensure_synthetic(n_categories=categories, n_train=4, n_test=4, size=32)


def test_cumulative_stream_holds_every_task_seen(synthetic_cache) -> None:
    bench = build_benchmark(_synthetic(), image_size=32, cumulative=True)
    sizes = [len(d) for d in bench.train_datasets]
    stream = list(bench.train_stream)
    assert [len(e.dataset) for e in stream] == [sum(sizes[: i + 1]) for i in range(3)]
    assert [e.category for e in stream] == bench.categories  # the task each step adds
    assert stream[2].categories == bench.categories
    with pytest.raises(ValueError, match="exclude"):
        build_benchmark(_synthetic(), image_size=32, cumulative=True, joint=True)


def _flat_grad(strategy) -> torch.Tensor:
    """The gradient of every parameter A-GEM sees, flattened in its order (zeros for None)."""
    return torch.cat([p.grad.view(-1) if p.grad is not None else torch.zeros(p.numel())
                      for _, p in strategy.model.named_parameters()])


class FlipEveryOtherGradient(SupervisedPlugin):
    """Negates the gradient of every other step of task 1, so that some steps point against
    the memory's gradient whatever the data (g . g_ref > 0 becomes < 0)."""

    def after_backward(self, strategy, **kwargs) -> None:
        if strategy.clock.train_exp_counter == 1 and strategy.clock.train_epoch_iterations == 0 \
                and strategy.clock.train_exp_epochs % 2 == 0:
            for p in strategy.model.parameters():
                if p.grad is not None:
                    p.grad.neg_()


class GradientProbe(SupervisedPlugin):
    """Placed around A-GEM: per task and step, g . g_ref before and the gradient after."""

    def __init__(self, agem: SeededAGEMPlugin, after: bool) -> None:
        super().__init__()
        self.agem, self.after = agem, after
        self.steps: dict[int, list[dict]] = {}

    def after_backward(self, strategy, **kwargs) -> None:
        task = strategy.clock.train_exp_counter
        g = _flat_grad(strategy).clone()
        if not self.after:
            ref = self.agem.reference_gradients if self.agem.buffers else torch.zeros(0)
            self.steps.setdefault(task, []).append({"g": g, "ref": ref.clone()})
        else:
            self.steps.setdefault(task, []).append({"g": g})


def test_agem_projects_conflicting_gradients_after_the_first_task(tiny_config,
                                                                  tmp_path) -> None:
    """A-GEM with the detector's unsupervised loss as its criterion: from task 1 on, each step
    gets a non-zero reference gradient from the memory of task 0; a gradient that points
    against it (g . g_ref < 0) is projected to g . g_ref = 0, the others are left alone;
    nothing changes during task 0."""
    cfg = tiny_config(**{"strategy.name": "agem", "train.epochs": 4,
                         "data.synthetic.categories": 2})
    ctx = RunContext(cfg, tmp_path, "x", torch.device("cpu"), None, None, print, "a", [])
    strategy = build_strategy(ctx, "stpm", 0, progress=False)
    agem = strategy.plugins[0]
    assert isinstance(agem, SeededAGEMPlugin)
    before, after = GradientProbe(agem, after=False), GradientProbe(agem, after=True)
    strategy.plugins = [FlipEveryOtherGradient(), before, agem, after, *strategy.plugins[1:]]
    for experience in build_benchmark(_synthetic(2), image_size=32).train_stream:
        strategy.train(experience)
    assert all(torch.equal(b["g"], a["g"]) for b, a in zip(before.steps[0], after.steps[0],
                                                          strict=True))
    projected = []
    for b, a in zip(before.steps[1], after.steps[1], strict=True):
        ref = b["ref"]
        assert ref.shape == b["g"].shape and float(ref.norm()) > 0
        conflict = float(torch.dot(b["g"], ref)) < 0
        projected.append(conflict)
        if conflict:
            assert abs(float(torch.dot(a["g"], ref))) < 1e-4 * float(b["g"].norm() * ref.norm())
        else:
            assert torch.equal(a["g"], b["g"])
    assert any(projected)
    assert len(agem.buffers) == 2 and all(len(b) == 4 for b in agem.buffers)


def test_agem_memory_is_the_same_when_rebuilt(synthetic_cache) -> None:
    stream = list(build_benchmark(_synthetic(), image_size=32).train_stream)
    first, again = SeededAGEMPlugin(2, 4, seed=3), SeededAGEMPlugin(2, 4, seed=3)
    for step, experience in enumerate(stream):
        first.add_experience(experience, step)
    again.restore_from_stream(stream)
    for a, b in zip(first.buffers, again.buffers, strict=True):
        assert [x[0].sum().item() for x in a] == [x[0].sum().item() for x in b]
    other = SeededAGEMPlugin(2, 4, seed=4)
    other.restore_from_stream(stream)
    assert any([x[0].sum().item() for x in a] != [x[0].sum().item() for x in b]
               for a, b in zip(first.buffers, other.buffers, strict=True))


@pytest.mark.parametrize("name", ["cumulative", "mas", "agem"])
def test_resume_after_each_step_gives_identical_records(tmp_path, synthetic_cache,
                                                        name) -> None:
    """Pretend the run died after step 0 and again after step 1: the resumed run restores the
    students and the strategy's state (MAS's importances, A-GEM's memory) and records exactly
    what the uninterrupted run recorded."""
    raw = tiny_raw(**{"model.methods": ["stpm"], "strategy.name": name, "train.epochs": 2,
                      "data.synthetic.categories": 3, "eval.metrics": ["pixel_auroc"],
                      "eval.saved_maps_per_task": 0})
    full = run_experiment(validate(raw), out_root=tmp_path / "full", log=lambda _: None,
                          progress=False)
    if name == "mas":  # a resume has non-zero importances to restore
        path = full / "checkpoints" / "stpm" / "seed0" / "step00.pt"
        importance = read_checkpoint(path)["extra"]["plugins"][0]["importance"]["__dict__"]
        assert sum(float(v["data"].abs().sum()) for _, v in importance) > 0
    for done in (0, 1):
        copy = resume_cut_copy(full, tmp_path, "stpm/seed0", done)
        got = pd.read_csv(copy / "records.csv", dtype=str)
        want = pd.read_csv(full / "records.csv", dtype=str)
        pd.testing.assert_frame_equal(got, want)


def _docs_example() -> dict:
    """The worked example of docs/strategies.md, "Adding a strategy", executed as a module."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "strategies.md").read_text()
    section = text.split("## Adding a strategy", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {"__name__": "strategies_l2_example"}
    exec(compile(code, "docs/strategies.md", "exec"), namespace)
    return namespace


@pytest.fixture
def docs_strategy():
    from strategies.continual import registry

    saved = dict(registry._specs)
    example = _docs_example()
    registry.register_strategy(example["SPEC"])
    yield example
    registry._specs.clear()
    registry._specs.update(saved)
    registry._version += 1


def test_the_documented_example_is_a_working_strategy(docs_strategy, tmp_path,
                                                      synthetic_cache) -> None:
    """The docs' module plus its registration: config section, plugins, a penalty that acts
    after the first task and a resume with identical records."""
    raw = tiny_raw(**{"strategy.name": "l2", "strategy.l2": {"l2_lambda": 50.0},
                      "train.epochs": 2, "data.synthetic.categories": 3,
                      "eval.metrics": ["pixel_auroc"], "eval.saved_maps_per_task": 0})
    cfg = validate(raw)
    assert cfg.strategy.options().l2_lambda == 50.0
    full = run_experiment(cfg, out_root=tmp_path / "full", log=lambda _: None, progress=False)
    naive = run_experiment(validate({**raw, "strategy": {"name": "naive"}}),
                           out_root=tmp_path / "naive", log=lambda _: None, progress=False)
    got, want = (pd.read_csv(run / "records.csv").set_index(["step", "eval_task"])["value"]
                 for run in (full, naive))
    first = got.index.get_level_values("step") <= 0
    pd.testing.assert_series_equal(got[first], want[first])
    assert (got[~first] - want[~first]).abs().max() > 0
    copy = tmp_path / "cut" / full.name
    shutil.copytree(full, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["cells"]["stpm/seed0"].update(status="running", completed_step=1)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    run_experiment(None, resume=copy, log=lambda _: None, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str),
                                  pd.read_csv(full / "records.csv", dtype=str))
