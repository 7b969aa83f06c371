"""The extension API: the out-of-tree example package (examples/cl_bench_example), installed
with pip (into a temporary folder, and editable with ``pip install -e`` into a fresh virtual
environment), is found through its entry point, listed, validated, run and reported; a run
config's ``plugins`` modules are imported first, and an import error names the module and its
cause."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
import yaml
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench import extensions
from cl_bench.cli import main
from cl_bench.config import validate
from cl_bench.errors import ConfigError
from cl_bench.run.experiment import run_experiment
from strategies.continual import registry as strategy_registry
from strategies.detectors import detector_names, get_detector
from strategies.detectors import registry as detector_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cl_bench_example"


@pytest.fixture
def fresh_registry(monkeypatch):
    """Entry points looked up again; what a test registers is removed afterwards."""
    monkeypatch.setattr(extensions, "_loaded_groups", set())
    monkeypatch.setattr(strategy_registry, "_entry_points_loaded", False)
    before = dict(detector_registry._REGISTRY)
    strategies_before = dict(strategy_registry._specs)
    yield
    detector_registry._REGISTRY.clear()
    detector_registry._REGISTRY.update(before)
    strategy_registry._specs.clear()
    strategy_registry._specs.update(strategies_before)
    for name in [m for m in sys.modules if m.startswith(("cl_bench_example", "my_tiny_plugin"))]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(target.glob("cl_bench_example-*.dist-info/entry_points.txt"))
    return target


def test_example_detector_is_listed_run_and_reported(installed_example, fresh_registry,
                                                      monkeypatch, tmp_path, synthetic_cache,
                                                      capsys) -> None:
    assert "mean_distance" not in detector_names()
    monkeypatch.syspath_prepend(str(installed_example))
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "mean_distance" in listing and "cl_bench_example.detector:SPEC" in listing
    assert get_detector("mean_distance").source == ("cl-bench-example "
                                                   "(cl_bench_example.detector:SPEC)")

    raw = tiny_raw(**{"model.methods": ["mean_distance", "stpm"],
                      "model.options": {"mean_distance": {"level": 2}},
                      "data.synthetic": {"categories": 2, "train": 4, "test": 4, "size": 64},
                      "data.image_size": 64})
    config = tmp_path / "example.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    run_dir = next((tmp_path / "out").glob("*/*"))
    records = pd.read_csv(run_dir / "records.csv")
    assert set(records.method) == {"mean_distance", "stpm"}
    assert records[(records.method == "mean_distance") & (records.step == 1)].value.notna().all()
    tables = "\n".join(p.read_text() for p in (run_dir / "report").rglob("*.md"))
    assert "mean_distance" in tables

    # a sweep of the plugin detector over two seeds: two cells, one combined report
    sweep = {**raw, "model": {**raw["model"], "methods": ["mean_distance"]},
             "grid": {"seeds": [0, 1]}}
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "sweep")]) == 0
    assert len(list((tmp_path / "sweep").glob("*/*/records.csv"))) == 2
    combined = (tmp_path / "sweep" / "tiny" / "report" / "report.md").read_text()
    assert "mean_distance" in combined


EXAMPLE_SPECS = {"mean_distance": "cl_bench_example.detector:SPEC",
                 "tiny_student": "cl_bench_example.student:SPEC",
                 "l2_anchor": "cl_bench_example.strategy:SPEC"}


def _example_raw(methods: list[str], strategy: str) -> dict:
    """2 categories of 4 train / 4 test images at 64 px, one epoch (seconds on 2 cores)."""
    return tiny_raw(**{"model.methods": methods, "strategy.name": strategy,
                       "data.synthetic": {"categories": 2, "train": 4, "test": 4, "size": 64},
                       "data.image_size": 64, "eval.saved_maps_per_task": 0,
                       "train.batch_size": 2})  # two steps per task: the anchor's pull acts


def test_example_package_lists_runs_resumes_and_reports(installed_example, fresh_registry,
                                                        monkeypatch, tmp_path, synthetic_cache,
                                                        capsys) -> None:
    """Issue 25's check: the three entry points of the installed package are listed with the
    package as their source; both detectors run, and the trainable one under the package's
    strategy; a run cut after its first task resumes to records identical to the uninterrupted
    run's; the report lists both detectors."""
    monkeypatch.syspath_prepend(str(installed_example))
    assert main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    for name, target in EXAMPLE_SPECS.items():
        row = next(r for r in rows if r.split()[:1] == [name])
        assert f"cl-bench-example ({target})" in row, row

    both = run_experiment(validate(_example_raw(["tiny_student", "mean_distance"], "naive")),
                          out_root=tmp_path / "both", log=lambda _: None, progress=False)
    anchored = run_experiment(validate({**_example_raw(["tiny_student"], "l2_anchor"),
                                        "strategy": {"name": "l2_anchor",
                                                     "l2_anchor": {"alpha": 100.0}}}),
                              out_root=tmp_path / "anchored", log=lambda _: None, progress=False)
    records = pd.read_csv(both / "records.csv")
    assert set(records.method) == {"tiny_student", "mean_distance"}
    assert records.value.notna().all()
    # the strategy acts: task 0 as under naive, task 1 trained under the pull to task 0's weights
    naive, pulled = (pd.read_csv(run / "records.csv").query("method == 'tiny_student'")
                     .set_index(["step", "eval_task", "metric"]).value for run in (both, anchored))
    first = naive.index.get_level_values("step") <= 0
    pd.testing.assert_series_equal(naive[first], pulled[first])
    assert (naive[~first] - pulled[~first]).abs().max() > 0

    for run, cell in ((both, "mean_distance/seed0"), (anchored, "tiny_student/seed0")):
        copy = resume_cut_copy(run, tmp_path / cell.split("/")[0], cell, 0)
        pd.testing.assert_frame_equal(pd.read_csv(copy / "records.csv", dtype=str),
                                      pd.read_csv(run / "records.csv", dtype=str))
    assert main(["report", str(copy)]) == 0
    tables = "\n".join(p.read_text() for p in (copy / "report").rglob("*.md"))
    assert "tiny_student" in tables
    resumed_both = tmp_path / "mean_distance" / "cut0" / both.name
    assert main(["report", str(resumed_both)]) == 0
    tables = "\n".join(p.read_text() for p in (resumed_both / "report").rglob("*.md"))
    assert "tiny_student" in tables and "mean_distance" in tables


def test_example_gradient_loop_strategy_with_the_gradient_free_detector_is_refused(
        installed_example, fresh_registry, monkeypatch, tmp_path, capsys) -> None:
    """l2_anchor acts in before_backward; mean_distance learns without gradients: exit 2 and one
    message naming both, before a run folder exists."""
    monkeypatch.syspath_prepend(str(installed_example))
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(_example_raw(["tiny_student", "mean_distance"],
                                                  "l2_anchor")))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert "'l2_anchor' acts in the gradient loop" in message and "'mean_distance'" in message
    assert "Traceback" not in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_plugins_module_registers_before_validation(fresh_registry, monkeypatch,
                                                    tmp_path) -> None:
    (tmp_path / "my_tiny_plugin.py").write_text(
        "from strategies.detectors import DetectorSpec, register_detector\n"
        "from strategies.detectors.stpm import STPM\n"
        "register_detector(DetectorSpec('my_stpm', STPM, description='a copy'))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"model.methods\[0\]"):
        validate({"model": {"methods": ["my_stpm"]}})  # not imported: unknown
    cfg = validate({"plugins": ["my_tiny_plugin"], "model": {"methods": ["my_stpm"]}})
    assert cfg.plugins == ["my_tiny_plugin"]
    assert get_detector("my_stpm").source == "my_tiny_plugin"


def test_plugin_import_errors_name_the_module_and_cause(fresh_registry, monkeypatch,
                                                        tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"plugins\[0\]: module 'no_such_pkg\.mod' is not "
                                          r"importable.*ModuleNotFoundError"):
        validate({"plugins": ["no_such_pkg.mod"]})
    (tmp_path / "my_tiny_plugin_broken.py").write_text("import math\nmath.nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"plugins\[1\]: module 'my_tiny_plugin_broken' "
                                          r"failed to import: AttributeError.*nope"):
        validate({"plugins": ["math", "my_tiny_plugin_broken"]})
    with pytest.raises(ConfigError, match="list of importable module names"):
        validate({"plugins": "my_tiny_plugin"})


def test_example_strategy_through_its_entry_point(installed_example, fresh_registry,
                                                  monkeypatch) -> None:
    with pytest.raises(ConfigError, match="l2_anchor"):
        validate({"strategy": {"name": "l2_anchor"}})  # not installed: unknown
    monkeypatch.setattr(strategy_registry, "_entry_points_loaded", False)
    monkeypatch.syspath_prepend(str(installed_example))
    cfg = validate({"strategy": {"name": "l2_anchor", "l2_anchor": {"alpha": 0.5}}})
    assert cfg.strategy.name == "l2_anchor"
    spec = strategy_registry.get_strategy("l2_anchor")
    assert spec.source == "cl-bench-example (cl_bench_example.strategy:SPEC)"
    (plugin,) = spec.build_plugins(cfg.strategy.l2_anchor, 0)
    assert plugin.alpha == 0.5


def test_example_strategy_changes_the_loss(installed_example, fresh_registry,
                                           monkeypatch) -> None:
    """l2_anchor adds alpha * ||theta - theta*||^2 once an anchor exists (not a no-op)."""
    import types

    import torch

    monkeypatch.syspath_prepend(str(installed_example))
    (plugin,) = strategy_registry.get_strategy("l2_anchor").build_plugins(
        strategy_registry.get_strategy("l2_anchor").options(alpha=2.0), 0)
    model = torch.nn.Linear(3, 1)
    strategy = types.SimpleNamespace(model=model, loss=torch.tensor(1.0), device="cpu")
    plugin.before_backward(strategy)
    assert float(strategy.loss) == 1.0  # no anchor before the first task ends
    plugin.after_training_exp(strategy)
    with torch.no_grad():
        model.weight += 0.5  # 3 weights moved by 0.5: penalty 2 * 3 * 0.25 = 1.5
    plugin.before_backward(strategy)
    assert float(strategy.loss) == pytest.approx(2.5)
    restored = type(plugin)(2.0)
    restored.load_state_dict(plugin.state_dict(), strategy)
    assert set(restored.anchor) == {"weight", "bias"}


def test_example_installed_editable_in_a_fresh_environment_is_listed(tmp_path) -> None:
    """``pip install -e`` as a researcher does it, into a new virtual environment that sees this
    one's packages (torch, Avalanche, cl-bench) through a ``.pth`` file: the detector is found
    through its entry point, and imported from the source folder (editable, not a copy)."""
    source = tmp_path / "example"  # not the package name: cwd would import it as a namespace
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    here = [sysconfig.get_paths()["purelib"], str(EXAMPLE.parents[1])]
    (Path(purelib) / "cl_bench_parent.pth").write_text("\n".join(here) + "\n")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-e", str(source),
         "--no-deps", "--no-build-isolation", "--no-index", "--quiet"],
        capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    listed = subprocess.run([str(python), "-m", "cl_bench.cli", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "mean_distance" in row)
    assert "cl_bench_example.detector:SPEC" in line
    where = subprocess.run([str(python), "-c", "import cl_bench_example; "
                            "print(cl_bench_example.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).resolve().is_relative_to(source.resolve()), where
