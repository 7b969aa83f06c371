"""One writer per run folder: a second writer fails at once naming the holder; no stale locks;
``cl-bench report`` does not take rows written twice in silence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from fault_helpers import fake_run

from cl_bench.errors import DataError, RunLockedError
from cl_bench.run.lock import OWNER_NAME, RunLock


def test_second_writer_fails_at_once_naming_the_holder(tmp_path) -> None:
    run_dir = fake_run(tmp_path / "tiny" / "run1")
    with RunLock(run_dir), pytest.raises(RunLockedError, match=rf"pid {os.getpid()}\b"):
        RunLock(run_dir).acquire()
    with RunLock(run_dir):  # released on a normal exit
        pass
    with pytest.raises(ZeroDivisionError), RunLock(run_dir):
        1 / 0  # noqa: B018 - an error inside the locked block
    RunLock(run_dir).acquire()  # released on an exception too
    assert (run_dir / OWNER_NAME).is_file()


def test_lock_of_a_killed_process_never_blocks(tmp_path) -> None:
    run_dir = fake_run(tmp_path / "tiny" / "run1")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from cl_bench.run.lock import RunLock; "
         f"lock = RunLock({str(run_dir)!r}); lock.acquire(); print('locked', flush=True); "
         "time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"pid {holder.pid}\b"):
            RunLock(run_dir).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run_dir / OWNER_NAME).is_file()  # the stale side file is left behind ...
    with RunLock(run_dir):  # ... and does not matter: the kernel dropped the flock
        pass


def _run_with_duplicates(tmp_path, change_value: bool):
    from cl_bench.records import Record, RecordWriter

    run_dir = fake_run(tmp_path / "tiny" / "run1", status="complete")
    writer = RecordWriter(run_dir / "records.csv")
    rows = [Record("run1", "stpm", "naive", False, 0, "alphabetical", step, "", "a", 0,
                   "image_auroc", 0.5 + step / 10) for step in (-1, 0)]
    writer.append(rows)
    again = rows[-1]
    if change_value:
        again = Record(**{**again.__dict__, "value": 0.9})
    writer.append([again])
    return run_dir


def test_report_warns_on_identical_duplicate_rows(tmp_path) -> None:
    from cl_bench.report.load import load_runs

    run_dir = _run_with_duplicates(tmp_path, change_value=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(run_dir)
    assert len(df) == 2
    assert any("1 duplicate row(s)" in str(w.message) and "records.csv" in str(w.message)
               for w in caught)


def test_report_refuses_duplicates_with_different_values(tmp_path) -> None:
    from cl_bench.report.load import load_runs

    run_dir = _run_with_duplicates(tmp_path, change_value=True)
    with pytest.raises(DataError, match=r"appear twice with different values"):
        load_runs(run_dir)
    assert len(pd.read_csv(run_dir / "records.csv")) == 3  # nothing rewritten
