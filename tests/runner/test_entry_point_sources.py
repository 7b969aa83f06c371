"""Specs installed through entry points (both groups, one loader: strategies.entry_points) record
their true source, the distribution and the entry point; a collision with a built-in name and an
entry point that fails to import name the distribution. The distribution is a hand-written
``.dist-info`` folder on ``sys.path`` (what pip writes), so no build tool is needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cl_bench import extensions
from cl_bench.cli import main
from strategies.continual import registry as strategy_registry
from strategies.detectors import registry as detector_registry

STRATEGY = '''from strategies.continual.spec import StrategySpec

SPEC = StrategySpec(name="my_strategy", description="an installed strategy")
NAIVE = StrategySpec(name="naive", description="a second naive")
'''
DETECTOR = '''import dataclasses

from strategies.detectors import get_detector

SPEC = dataclasses.replace(get_detector("stpm"), name="stpm_copy", source="cl-bench")
'''
BROKEN = '''"""fails on import"""
raise RuntimeError("boom")
'''


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """install(entry_points_txt): the distribution ``my-ext`` with those entry points."""
    monkeypatch.setattr(extensions, "_loaded_groups", set())
    monkeypatch.setattr(strategy_registry, "_entry_points_loaded", False)
    strategies_before = dict(strategy_registry._specs)
    detectors_before = dict(detector_registry._REGISTRY)

    def _install(entry_points_txt: str) -> None:
        site = tmp_path / "site"
        package = site / "my_ext"
        package.mkdir(parents=True)
        for name, text in (("__init__.py", ""), ("strategy.py", STRATEGY),
                           ("detector.py", DETECTOR), ("broken.py", BROKEN)):
            (package / name).write_text(text)
        info = site / "my_ext-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-ext\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(entry_points_txt)
        monkeypatch.syspath_prepend(str(site))

    yield _install
    strategy_registry._specs.clear()
    strategy_registry._specs.update(strategies_before)
    detector_registry._REGISTRY.clear()
    detector_registry._REGISTRY.update(detectors_before)
    for name in [m for m in sys.modules if m.startswith("my_ext")]:
        del sys.modules[name]


def listed_source(listing: str, name: str) -> str:
    """The source column of ``name``'s row in ``cl-bench list``."""
    row = next(line for line in listing.splitlines() if line.split()[:1] == [name])
    return row.split(maxsplit=1)[1]


def test_installed_strategy_and_detector_are_listed_with_their_distribution(install,
                                                                            capsys) -> None:
    install("[cl_bench.strategies]\nmy_strategy = my_ext.strategy:SPEC\n"
            "[cl_bench.detectors]\nstpm_copy = my_ext.detector:SPEC\n")
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert listed_source(listing, "my_strategy").startswith("my-ext (my_ext.strategy:SPEC)")
    assert listed_source(listing, "stpm_copy").startswith("my-ext (my_ext.detector:SPEC)")
    assert listed_source(listing, "naive").startswith("cl-bench ")
    assert strategy_registry.get_strategy("my_strategy").source == "my-ext (my_ext.strategy:SPEC)"


def test_a_builtin_name_registered_again_names_both_packages(install, capsys) -> None:
    install("[cl_bench.strategies]\nnaive = my_ext.strategy:NAIVE\n")
    assert main(["list"]) == 2
    message = capsys.readouterr().err
    assert "'naive'" in message and "(by cl-bench)" in message
    assert "my-ext (my_ext.strategy:NAIVE) registers it again" in message


@pytest.mark.parametrize("group", ["cl_bench.strategies", "cl_bench.detectors"])
def test_an_entry_point_that_fails_names_its_distribution_and_line(install, capsys,
                                                                    group: str) -> None:
    install(f"[{group}]\nbroken = my_ext.broken:SPEC\n")
    assert main(["list"]) == 2
    message = capsys.readouterr().err
    assert "distribution my-ext" in message and "RuntimeError: boom" in message
    assert f"{Path('my_ext', 'broken.py')}:2)" in message


def test_an_entry_point_whose_name_differs_from_its_spec_is_refused(install, capsys) -> None:
    """``other = my_ext.strategy:SPEC`` (the spec is ``my_strategy``): one error naming both
    names and the distribution, exit 2, instead of registering the spec under a name the
    package's metadata does not show."""
    install("[cl_bench.strategies]\nother = my_ext.strategy:SPEC\n")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "other" in err and "'my_strategy'" in err and "my-ext" in err
    assert "Traceback" not in err
