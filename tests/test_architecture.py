"""Architecture contracts (``[tool.importlinter]`` in pyproject.toml), checked with import-linter.

A broken contract fails this test with import-linter's report, which names the offending import
chain: e.g. ``strategies`` importing ``cl_bench``, a detector or teacher importing Avalanche, a
``strategies`` subpackage importing one above it (continual > training > detectors > teachers >
entry_points > errors), the report importing the runner, a core module importing the benchmarks,
or an import cycle between sibling modules (function-local imports count too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    """The ``lint-imports`` executable of this interpreter's environment (the ``dev`` extra)."""
    here = Path(sys.executable).parent / "lint-imports"
    found = str(here) if here.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: install the test tools with pip install -e '.[dev]'")
    return found


def test_import_contracts_are_kept():
    from importlinter.api import read_configuration

    contracts = read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]
    assert len(contracts) >= 7, contracts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([_lint_imports(), "--no-cache", "--no-logo", "pyproject.toml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"an architecture contract is broken:\n{report}"
    for contract in contracts:
        assert f"{contract['name']} KEPT" in report, report
