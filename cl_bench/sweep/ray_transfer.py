"""Ray cells' attempts and their files' way home (``--ray-results return``).

One :class:`CellInbox` actor per sweep lives on the driver's node. Every Ray attempt of a cell
checks in with it first (:meth:`CellInbox.begin`: attempt number, node, host, start time), so
the driver knows how many times a cell ran and where, also for attempts lost with their node.

In ``return`` mode the cell's run folder (all but ``checkpoints/``) and its log travel back in
chunks of ``chunk_bytes``: the task sends one chunk at a time and waits until the inbox has
written it (:func:`send_folder`), so at most one chunk per running cell is in Ray's object store,
however large the saved maps are. The inbox writes them into a staging folder of that attempt,
``<experiment>/.incoming/<run_id>.<attempt>/``; the driver checks every file against the
listing (size and SHA-256) the task returned, and only then moves the run folder into place with
one ``rename`` (:func:`land_files`). A cell is complete only when all its files have landed; an
attempt cut off half-way leaves only its staging folder, which is removed.

Written by hand because Ray ships objects, not folders: nothing in Ray writes a task's files
into the driver's filesystem.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cl_bench.errors import RunError
from cl_bench.sweep.execute import LOGS, NOT_RETURNED

INCOMING = ".incoming"
#: bytes per chunk on the way home: small against any object store (Ray's minimum is 75 MB)
CHUNK_BYTES = 8 * 1024 * 1024


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def staging_dir(experiment_dir: Path, run_id: str, attempt: int) -> Path:
    return Path(experiment_dir) / INCOMING / f"{run_id}.{attempt}"


class CellInbox:
    """Attempts of every cell, and the files of ``return``-mode attempts (a Ray actor)."""

    def __init__(self, experiment_dir: str) -> None:
        self.experiment_dir = Path(experiment_dir)
        self.attempts: dict[str, list[dict[str, Any]]] = {}
        self.largest_chunk = 0  # bytes: what the object store held at most for one cell

    def begin(self, run_id: str, node_id: str, host: str) -> int:
        """Record a new attempt of ``run_id``; its number (1, 2, ...)."""
        attempts = self.attempts.setdefault(run_id, [])
        attempts.append({"attempt": len(attempts) + 1, "node_id": node_id, "host": host,
                         "started": utc_now(), "ended": None})
        return len(attempts)

    def end(self, run_id: str, attempt: int) -> None:
        self.attempts[run_id][attempt - 1]["ended"] = utc_now()

    def history(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.attempts.get(run_id, []))

    def write(self, run_id: str, attempt: int, rel: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` of file ``rel`` of this attempt's staging folder."""
        target = staging_dir(self.experiment_dir, run_id, attempt) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        self.largest_chunk = max(self.largest_chunk, len(data))
        with target.open("r+b" if offset else "wb") as fh:
            fh.seek(offset)
            fh.write(data)
        return len(data)

    def largest_chunk_received(self) -> int:
        return self.largest_chunk


def files_to_return(experiment_dir: Path, run_id: str) -> Iterator[tuple[str, Path]]:
    """``(path relative to the experiment folder, path)`` of the cell's files that travel home:
    its run folder but ``checkpoints/`` (only needed to resume, and large), and its log."""
    run_dir = experiment_dir / run_id
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(experiment_dir)
        if path.is_file() and not (len(rel.parts) > 2 and rel.parts[1] in NOT_RETURNED):
            yield rel.as_posix(), path
    log = experiment_dir / LOGS / f"{run_id}.log"
    if log.is_file():
        yield log.relative_to(experiment_dir).as_posix(), log


def send_folder(ray: Any, inbox: Any, experiment_dir: Path, run_id: str, attempt: int,
                chunk_bytes: int = CHUNK_BYTES) -> dict[str, dict[str, Any]]:
    """Send the cell's files to ``inbox`` chunk by chunk; their listing (size, sha256)."""
    listing = {}
    for rel, path in files_to_return(experiment_dir, run_id):
        digest = hashlib.sha256()
        offset = 0
        with path.open("rb") as fh:
            while True:
                data = fh.read(chunk_bytes)
                if not data and offset:
                    break
                digest.update(data)
                # one chunk in flight per cell: the object store never holds a whole folder
                ray.get(inbox.write.remote(run_id, attempt, rel, offset, data))
                offset += len(data)
                if not data:  # an empty file: written once, as such
                    break
        listing[rel] = {"size": offset, "sha256": digest.hexdigest()}
    return listing


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def land_files(experiment_dir: Path, run_id: str, attempt: int,
               listing: dict[str, dict[str, Any]]) -> None:
    """Check the staged files of ``attempt`` against ``listing``, then move the run folder into
    place with one rename and append the attempt's log; :class:`RunError` if any file is missing,
    extra or different (nothing is installed then)."""
    staged = staging_dir(experiment_dir, run_id, attempt)
    found = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    problems = sorted(set(listing) ^ found)
    for rel in sorted(set(listing) & found):
        path = staged / rel
        if (path.stat().st_size != listing[rel]["size"]
                or file_digest(path) != listing[rel]["sha256"]):
            problems.append(rel)
    if problems:
        raise RunError(f"cell {run_id}: {len(problems)} of its returned file(s) did not land "
                       f"intact ({', '.join(problems[:3])}); the cell is not complete, run the "
                       "sweep again")
    run_part = staged / run_id
    if run_part.is_dir():
        final = experiment_dir / run_id
        old = staged.with_name(f"{staged.name}.replaced")
        if final.exists():  # an incomplete folder of an earlier sweep: replaced whole
            final.rename(old)
        run_part.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    log_part = staged / LOGS / f"{run_id}.log"
    if log_part.is_file():
        target = experiment_dir / LOGS / log_part.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as fh:
            fh.write(log_part.read_bytes())
    clear_staging(experiment_dir, run_id)


def clear_staging(experiment_dir: Path, run_id: str) -> None:
    """Remove every staging folder of ``run_id`` (attempts cut off, or landed)."""
    incoming = Path(experiment_dir) / INCOMING
    for path in incoming.glob(f"{run_id}.*"):
        shutil.rmtree(path, ignore_errors=True)
    if incoming.is_dir() and not any(incoming.iterdir()):
        incoming.rmdir()


def scratch_root() -> str | None:
    """Where a ``return``-mode cell runs: ``$CL_BENCH_SCRATCH`` if set (a node's fast local
    disk), else the system's temporary folder."""
    return os.environ.get("CL_BENCH_SCRATCH") or None
