"""An unwritable ``--out`` and a read-only run folder end in one message, exit status 2.

Run as an unprivileged user: as root, ``setpriv`` drops to uid/gid 65534 (root writes anywhere);
as anyone else, the folders are made read-only with chmod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import fake_run, snapshot, write_config

ROOT = os.geteuid() == 0
NOBODY = 65534


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder the unprivileged user can read (pytest's own tmp is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="cl-bench-perm-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir()
    if ROOT:
        os.chown(home, NOBODY, NOBODY)
    yield base
    for path in base.rglob("*"):  # make everything deletable again
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(base)


def _cli_unprivileged(base: Path, *args: str) -> subprocess.CompletedProcess:
    prefix = []
    if ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot drop write permission")
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        _skip_unless_importable(prefix)
    env = {**os.environ, "HOME": str(base / "home"), "MPLCONFIGDIR": str(base / "home"),
           "CL_BENCH_CACHE": str(base / "home" / "cache")}
    return subprocess.run([*prefix, sys.executable, "-m", "cl_bench.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def _skip_unless_importable(prefix: list[str]) -> None:
    """Skip when uid 65534 cannot read this interpreter's packages (venv in a private dir)."""
    probe = subprocess.run([*prefix, sys.executable, "-c", "import numpy, torch, cl_bench"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"uid {NOBODY} cannot import the test environment from {sys.prefix} "
                    f"({last}); make its folders world-readable to run this test")


def _read_only(folder: Path) -> None:
    """Not writable for the unprivileged user (root-owned 0755 already is, for uid 65534)."""
    if not ROOT:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)


def test_out_not_writable(shared_tmp) -> None:
    config = write_config(shared_tmp / "tiny.yaml")
    config.chmod(0o644)
    out = shared_tmp / "results"
    out.mkdir(mode=0o755)
    _read_only(out)
    done = _cli_unprivileged(shared_tmp, "run", str(config), "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"--out {out}" in done.stderr and "not writable" in done.stderr
    assert not any(out.iterdir())


def test_resume_of_a_read_only_run_folder(shared_tmp) -> None:
    run_dir = fake_run(shared_tmp / "tiny" / "run1")
    for path in [run_dir, *run_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    _read_only(run_dir)
    before = snapshot(run_dir)
    done = _cli_unprivileged(shared_tmp, "run", "--resume", str(run_dir))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "not writable" in done.stderr and "chmod -R u+w" in done.stderr
    assert snapshot(run_dir) == before
