"""Friction met by a newcomer (issue #27, deliverable 9): help output and report wording."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["bench", "detectors", "--help"]])
def test_commands_print_no_third_party_import_warning(argv) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # what a user's shell shows
    done = subprocess.run([sys.executable, "-m", "cl_bench.cli", *argv], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "qpsolvers" not in done.stderr and "UserWarning" not in done.stderr, done.stderr


def test_the_same_message_from_another_module_is_still_shown() -> None:
    import warnings

    import cl_bench  # noqa: F401  (installs the filter)

    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("no QP solver found here", UserWarning, stacklevel=1)
    assert caught  # narrowed to qpsolvers' module, not every warning with that text


def test_bench_detectors_help_is_a_whole_sentence(capsys) -> None:
    from cl_bench.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "detectors", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "trainable parameters and peak memory of each detector, for one backbone, image " \
           "size and batch size, on CPU or CUDA." in text
