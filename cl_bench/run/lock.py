"""One writer per run folder: an exclusive lock on ``<run>/.lock`` while a process writes the run.

Two processes resuming the same folder would both append the same steps to ``records.csv``. The
lock is the ``filelock`` package's :class:`~filelock.FileLock`, which on Linux and macOS is an
``flock(2)`` on the open lock file: the kernel drops it when the process ends in any way (a normal
exit, an exception, ``kill -9``, a crashed node's reboot), so a stale lock never blocks a later
resume. The holder's pid, host, start time and command go into ``<run>/.lock.owner`` (JSON), only
to name the holder in the message of a process that finds the folder locked; that side file is
never trusted as the lock itself.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from cl_bench.errors import RunError, RunLockedError
from cl_bench.io import atomic_write_json

LOCK_NAME = ".lock"
OWNER_NAME = ".lock.owner"


def read_owner(run_dir: Path, name: str = OWNER_NAME) -> dict:
    """What the holder wrote into ``.lock.owner`` (``{}`` when absent or unreadable)."""
    try:
        owner = json.loads((Path(run_dir) / name).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


class RunLock:
    """``with RunLock(run_dir):`` hold the run folder's lock, or raise :class:`RunLockedError`
    at once (no waiting) naming the process that holds it."""

    #: the lock file and the holder's side file in the folder
    lock_name = LOCK_NAME
    owner_name = OWNER_NAME

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / self.lock_name), timeout=0)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise RunLockedError(self._held_message()) from None
        except PermissionError as exc:
            raise RunError(f"cannot lock run folder {self.run_dir}: {exc.strerror} on "
                           f"{exc.filename or self.run_dir / self.lock_name}; make the folder "
                           "writable "
                           f"(chmod -R u+w {self.run_dir}) or copy it and use the copy") from None
        try:
            atomic_write_json(self.run_dir / self.owner_name, {
                "pid": os.getpid(), "host": platform.node(),
                "since": _utc_now(), "command": sys.argv,
            })
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        if self._lock.is_locked:
            (self.run_dir / self.owner_name).unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _holder(self) -> tuple[str, str]:
        """(pid, "pid P on host H since T") of the process that holds the lock, from its owner
        file (parts it lacks are left out)."""
        owner = read_owner(self.run_dir, self.owner_name)
        pid = str(owner.get("pid", "?"))
        where = f" on host {owner['host']}" if owner.get("host") else ""
        since = f" since {owner['since']}" if owner.get("since") else ""
        return pid, f"pid {pid}{where}{since}"

    def _held_message(self) -> str:
        pid, holder = self._holder()
        return (f"run folder {self.run_dir} is being written by another process ({holder}); "
                "two processes writing one run would duplicate its records. "
                f"Wait until it ends, or stop it (kill {pid}) and resume then")


class SweepLock(RunLock):
    """``with SweepLock(experiment_dir):`` one ``cl-bench sweep`` per sweep folder
    (``<folder>/.sweep.lock``, the same kind of kernel lock as :class:`RunLock`): a second sweep
    on the same ``--out`` and experiment stops at once instead of running the same cells."""

    lock_name = ".sweep.lock"
    owner_name = ".sweep.lock.owner"

    def _held_message(self) -> str:
        pid, holder = self._holder()
        return (f"sweep folder {self.run_dir} is being run by another cl-bench sweep ({holder}); "
                "two sweeps on one folder would run the same cells at once. "
                f"Wait until it ends (it skips or resumes what is done), stop it (kill {pid}) "
                "and start this sweep again, or give this sweep another --out DIR")


def _utc_now() -> str:
    from cl_bench.manifest import utc_now

    return utc_now()
