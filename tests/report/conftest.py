"""Fixtures of the report tests: a hand-built experiment (see report_fabricate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fabricate import make_experiment


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory) -> Path:
    """2 methods (stpm, hybrid) x 3 seeds x 3 tasks, maps for seed 0."""
    return make_experiment(tmp_path_factory.mktemp("results"))
