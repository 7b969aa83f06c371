"""Files of a ``return``-mode cell on their way home, without Ray: chunked sending, checked
landing, and the Ray options' checks (:mod:`cl_bench.sweep.ray_transfer`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cl_bench.errors import ConfigError, RunError
from cl_bench.sweep.ray_backend import RayOptions
from cl_bench.sweep.ray_transfer import INCOMING, CellInbox, land_files, send_folder

RUN = "cell-1"
CHUNK = 1000


class Remote:
    """``actor.method.remote(...)`` run at once in this process (what Ray does elsewhere)."""

    def __init__(self, method, calls: list) -> None:
        self.method, self.calls = method, calls

    def remote(self, *args):
        self.calls.append(args)
        return self.method(*args)


class LocalInbox:
    def __init__(self, experiment_dir: Path) -> None:
        self.inbox = CellInbox(str(experiment_dir))
        self.writes: list[tuple] = []
        self.write = Remote(self.inbox.write, self.writes)


class NoRay:
    @staticmethod
    def get(value):
        return value


def finished_cell(scratch: Path) -> dict[str, bytes]:
    """A run folder as a worker leaves it; the files that must come home, with their bytes."""
    files = {f"{RUN}/records.csv": b"run_id,step\ncell-1,0\n",
             f"{RUN}/maps/task0.npz": os.urandom(int(2.5 * CHUNK)),
             f"{RUN}/.lock": b"",
             f"logs/{RUN}.log": b"== cell cell-1\n"}
    for rel, data in files.items():
        (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
        (scratch / rel).write_bytes(data)
    (scratch / RUN / "checkpoints").mkdir()
    (scratch / RUN / "checkpoints" / "step0.pt").write_bytes(b"x" * 5000)
    return files


def test_files_travel_in_chunks_and_land_whole(tmp_path: Path) -> None:
    scratch, home = tmp_path / "worker", tmp_path / "driver"
    expected = finished_cell(scratch)
    (home / RUN).mkdir(parents=True)  # an incomplete folder of an earlier sweep
    (home / RUN / "stale.txt").write_text("old")
    (home / "logs").mkdir()
    (home / "logs" / f"{RUN}.log").write_bytes(b"earlier attempt\n")
    inbox = LocalInbox(home)
    attempt = inbox.inbox.begin(RUN, "node-a", "host-a")

    listing = send_folder(NoRay, inbox, scratch, RUN, attempt, chunk_bytes=CHUNK)

    assert set(listing) == set(expected)  # checkpoints stay on the worker
    assert max(len(call[-1]) for call in inbox.writes) <= CHUNK
    assert sum(call[2] == f"{RUN}/maps/task0.npz" for call in inbox.writes) == 3
    assert not (home / RUN / "records.csv").exists()  # nothing installed before it is checked
    land_files(home, RUN, attempt, listing)
    landed = {p.relative_to(home).as_posix(): p.read_bytes()
              for p in home.rglob("*") if p.is_file()}
    assert landed == {**expected, f"logs/{RUN}.log": b"earlier attempt\n== cell cell-1\n"}
    assert not (home / INCOMING).exists()


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered"])
def test_a_file_that_did_not_land_intact_keeps_the_cell_incomplete(tmp_path: Path,
                                                                   damage: str) -> None:
    scratch, home = tmp_path / "worker", tmp_path / "driver"
    finished_cell(scratch)
    inbox = LocalInbox(home)
    listing = send_folder(NoRay, inbox, scratch, RUN, 1, chunk_bytes=CHUNK)
    staged = home / INCOMING / f"{RUN}.1" / RUN / "maps" / "task0.npz"
    data = staged.read_bytes()
    if damage == "missing":
        staged.unlink()
    elif damage == "truncated":
        staged.write_bytes(data[:-1])
    else:
        staged.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(RunError, match=r"1 of its returned file\(s\) did not land intact "
                                       r"\(cell-1/maps/task0\.npz\)"):
        land_files(home, RUN, 1, listing)
    assert not (home / RUN).exists()


def test_a_lost_attempt_is_counted_and_its_files_kept_apart() -> None:
    inbox = CellInbox("/nonexistent")
    assert [inbox.begin(RUN, "node-a", "a"), inbox.begin(RUN, "node-b", "b")] == [1, 2]
    inbox.end(RUN, 2)
    first, second = inbox.history(RUN)
    assert (first["node_id"], first["ended"]) == ("node-a", None)
    assert (second["node_id"], second["attempt"]) == ("node-b", 2) and second["ended"]


@pytest.mark.parametrize("share", [0, -1, 1.5, 2])
def test_gpus_per_cell_is_a_share_of_one_gpu(share: float) -> None:
    with pytest.raises(ConfigError, match=rf"--gpus-per-cell {share:g}: give a share of one GPU"):
        RayOptions(gpus_per_cell=share).check()
    assert RayOptions(gpus_per_cell=0.5).check().gpus_per_cell == 0.5


def test_a_bad_gpu_share_stops_the_sweep_before_anything_is_written(tmp_path: Path) -> None:
    from cl_bench.sweep import run_sweep, sweep_from_dict

    spec = sweep_from_dict({"experiment": "unit", "model": {"methods": ["stpm"]},
                            "grid": {"seeds": [0]}}, "unit.yaml")
    with pytest.raises(ConfigError, match="--gpus-per-cell 2: give a share of one GPU"):
        run_sweep(spec, tmp_path, backend="ray", gpus_per_cell=2)
    with pytest.raises(ConfigError, match="--gpus-per-cell apply to --backend ray only"):
        run_sweep(spec, tmp_path, backend="local", gpus_per_cell=0.5)
    assert not (tmp_path / "unit").exists()
