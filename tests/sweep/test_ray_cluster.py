"""Sweeps on a Ray cluster of several nodes on this machine (``ray.cluster_utils.Cluster``).

A head node without CPUs (it runs the driver's inbox actor) and two worker nodes with one CPU,
100 MB of object store and their own temporary and scratch folders each. Cells are tiny STPM
runs (two 32-px categories, one epoch, one torch thread); their records are compared with the
local backend's for exact equality (same machine, same thread count).

Faults are injected with the ``gated`` test strategy (``sweep_plugins``): the first cell that
starts its second task stops at a gate and says on which node (a file); the test then kills that
node or the driver, waits until the stopped process is gone, and opens the gate. No step waits
for a guessed time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cl_bench.sweep import load_sweep, run_sweep, sweep_from_dict
from cl_bench.sweep.ray_backend import RayOptions, cell_resources, run_ray
from cl_bench.sweep.ray_transfer import CHUNK_BYTES, CellInbox, file_digest, land_files, send_folder

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
NODE = {"num_cpus": 1, "object_store_memory": 100 * MB, "include_dashboard": False}
#: a lost node is noticed within seconds, not Ray's default half minute
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 1000,
                      "health_check_failure_threshold": 3}
LIMIT_S = 240  # a safety net for the waits below, never a timing assumption

BASE = {
    "experiment": "ray",
    "plugins": ["sweep_plugins"],
    "data": {"synthetic": {"categories": 2, "train": 4, "test": 4, "size": 32},
             "image_size": 32, "cache_mb": 16},
    "model": {"methods": ["stpm"], "backbone": "efficientnet_lite0", "weights": "none"},
    "train": {"epochs": 1, "batch_size": 4},
    "eval": {"batch_size": 4, "saved_maps_per_task": 1},
    "num_threads": 1,
    "device": "cpu",
    "strategy": {"name": "gated"},
    "grid": {"seeds": [0, 1]},
}


def sweep_raw(gate: Path, **grid) -> dict:
    raw = json.loads(json.dumps(BASE))
    raw["strategy"]["gated"] = {"gate": str(gate)}
    raw["grid"].update(grid)
    return raw


def open_gate(tmp_path: Path) -> Path:
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "release").touch()
    return gate


def records(experiment_dir: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str) for p in sorted(experiment_dir.glob("*/records.csv"))]
    return pd.concat(frames).sort_values(["run_id", "step", "eval_task", "metric"]).reset_index(
        drop=True)


def status(experiment_dir: Path) -> dict:
    return json.loads((experiment_dir / "sweep.json").read_text())


def wait_for(check, what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def process_gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def arrival(gate: Path) -> dict:
    wait_for(lambda: (gate / "arrived").is_file() and (gate / "arrived").stat().st_size,
             "a cell at the gate")
    return json.loads((gate / "arrived").read_text())


class LocalCluster:
    """The head and the worker nodes; ``replace`` starts a fresh worker for a killed one."""

    def __init__(self) -> None:
        self.private_dirs: list[str] = []
        self.cluster = Cluster(initialize_head=True, head_node_args={
            **NODE, "num_cpus": 0, "_system_config": FAST_HEALTH_CHECKS})
        self.workers = [self.add_worker() for _ in range(2)]
        self.cluster.wait_for_nodes()

    def add_worker(self, **args):
        private = tempfile.mkdtemp(prefix="cl-ray-node-")  # short: Ray's socket paths
        self.private_dirs.append(private)
        env = {"CL_BENCH_SCRATCH": private, "TMPDIR": private, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        return self.cluster.add_node(**{**NODE, "temp_dir": private, "env_vars": env, **args})

    def kill(self, node_id: str) -> None:
        (node,) = [n for n in self.workers if n.node_id == node_id]
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def node_ids(self) -> set[str]:
        return {n.node_id for n in self.workers}


@pytest.fixture(scope="module")
def cluster():
    local = LocalCluster()
    ray.init(address=local.cluster.address, log_to_driver=False)
    try:
        yield local
    finally:
        ray.shutdown()
        local.cluster.shutdown()
        for folder in local.private_dirs:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The records of the two cells run by the local backend in this process."""
    out = tmp_path_factory.mktemp("local")
    spec = sweep_from_dict(sweep_raw(open_gate(out)), "ray.yaml")
    outcome = run_sweep(spec, out, backend="local", threads=1, report=False, log=lambda _: None)
    assert [r.status for r in outcome.results.values()] == ["complete"] * 2
    return records(out / "ray")


def run_files(experiment_dir: Path) -> dict[str, bytes]:
    """Every file of the cells' run folders (bar checkpoints, which stay on the node in
    ``return`` mode), path -> bytes."""
    return {p.relative_to(experiment_dir).as_posix(): p.read_bytes()
            for p in sorted(experiment_dir.glob("*/**/*"))
            if p.is_file() and "checkpoints" not in p.parts and p.parts[-2] != "logs"}


SAME_BYTES = ("records.csv", ".npz", ".png", ".npy")  # manifests and configs hold times/paths


def test_cells_spread_over_nodes_and_both_result_modes_match_local(
        cluster: LocalCluster, reference: pd.DataFrame, tmp_path: Path) -> None:
    gate = open_gate(tmp_path)
    spec = sweep_from_dict(sweep_raw(gate), "ray.yaml")
    shared = run_sweep(spec, tmp_path / "shared", backend="ray", ray_results="shared",
                       report=False, log=lambda _: None)
    returned = run_sweep(spec, tmp_path / "return", backend="ray", ray_results="return",
                         report=False, log=lambda _: None)
    for outcome in (shared, returned):
        assert [r.status for r in outcome.results.values()] == ["complete"] * 2
        cells = status(outcome.experiment_dir)["cells"]
        assert all(len(c["attempts"]) == 1 for c in cells)
        # SPREAD over two one-CPU nodes: both of them ran cells
        assert {c["attempts"][0]["node_id"] for c in cells} == cluster.node_ids()
        pd.testing.assert_frame_equal(records(outcome.experiment_dir), reference)
    shared_files = run_files(shared.experiment_dir)
    returned_files = run_files(returned.experiment_dir)
    assert any(name.endswith((".npz", ".png", ".npy")) for name in shared_files)  # saved maps
    assert set(returned_files) == set(shared_files)
    for name, data in shared_files.items():
        if name.endswith(SAME_BYTES):
            assert returned_files[name] == data, name
    assert not (returned.experiment_dir / ".incoming").exists()
    assert all((returned.experiment_dir / "logs" / f"{r}.log").is_file()
               for r in returned.results)


def run_in_thread(target) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def body() -> None:
        try:
            box["value"] = target()
        except BaseException as exc:  # re-raised by the test
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("mode", ["shared", "return"])
def test_node_lost_mid_cell_is_retried_elsewhere(cluster: LocalCluster, reference: pd.DataFrame,
                                                 tmp_path: Path, mode: str) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    spec = sweep_from_dict(sweep_raw(gate), "ray.yaml")
    thread, box = run_in_thread(lambda: run_sweep(
        spec, tmp_path, backend="ray", ray_results=mode, report=False, log=lambda _: None))
    stopped = arrival(gate)  # a cell finished task 1 and waits before task 2
    lost = stopped["node_id"]
    survivor = (cluster.node_ids() - {lost}).pop()
    cluster.kill(lost)
    wait_for(lambda: process_gone(stopped["pid"]), "the lost node's cell process to end")
    (gate / "release").touch()
    thread.join(LIMIT_S)
    cluster.workers.append(cluster.add_worker())  # two workers again for the next tests
    assert "error" not in box, box.get("error")
    outcome = box["value"]
    assert [r.status for r in outcome.results.values()] == ["complete"] * 2

    ours = records(tmp_path / "ray")
    assert not ours.duplicated(["run_id", "step", "eval_task", "metric"]).any()
    pd.testing.assert_frame_equal(
        ours, reference)
    story = status(tmp_path / "ray")
    assert story["counts"] == {"complete": 2, "skipped": 0, "failed": 0, "pending": 0}
    (hit,) = [c for c in story["cells"] if len(c["attempts"]) > 1]
    assert [(a["node_id"], a["outcome"]) for a in hit["attempts"]] == [
        (lost, "lost"), (survivor, "complete")]
    log = (tmp_path / "ray" / "logs" / f"{hit['run_id']}.log").read_text()
    if mode == "shared":  # the second attempt resumed after the task the first one finished
        assert log.count("== cell ") == 3 and "resum" in log.lower()
    assert not (tmp_path / "ray" / ".incoming").exists()


def write_sweep_file(path: Path, gate: Path) -> Path:
    path.write_text(yaml.safe_dump(sweep_raw(gate)))
    return path


def cli_sweep(cluster: LocalCluster, sweep_file: Path, out: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from cl_bench.cli import main; sys.exit(main())",
         "sweep", str(sweep_file), "--backend", "ray", "--address", cluster.cluster.address,
         "--ray-results", mode, "--out", str(out), "--no-report"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("mode", ["shared", "return"])
def test_driver_killed_and_run_again(cluster: LocalCluster, reference: pd.DataFrame,
                                     tmp_path: Path, mode: str) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    sweep_file = write_sweep_file(tmp_path / "sweep.yaml", gate)
    experiment_dir = tmp_path / "out" / "ray"
    driver = cli_sweep(cluster, sweep_file, tmp_path / "out", mode)
    try:
        stopped = arrival(gate)
        wait_for(lambda: (experiment_dir / "sweep.json").is_file()
                 and status(experiment_dir)["counts"]["complete"] == 1, "the other cell")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.communicate()
    # Ray ends the tasks of a driver that died
    wait_for(lambda: process_gone(stopped["pid"]), "the cut cell's process to end")
    cut = next(c["run_id"] for c in status(experiment_dir)["cells"] if c["status"] == "pending")
    if mode == "shared":
        assert (experiment_dir / cut / "records.csv").is_file()  # task 1 done: resumable
    else:
        assert not (experiment_dir / cut).exists()  # nothing half-landed
    (gate / "release").touch()

    # the same sweep again, from this process (already a driver of the cluster: no second
    # interpreter and no fresh workers to start on a 2-core machine)
    lines: list[str] = []
    again = run_sweep(load_sweep(sweep_file), tmp_path / "out", backend="ray", ray_results=mode,
                      report=False, log=lines.append)
    assert not again.failed, lines
    story = status(experiment_dir)
    assert story["counts"] == {"complete": 1, "skipped": 1, "failed": 0, "pending": 0}
    pd.testing.assert_frame_equal(
        records(experiment_dir),
        reference)
    log = (experiment_dir / "logs" / f"{cut}.log").read_text().lower()
    if mode == "shared":
        assert "resum" in log
    assert not (experiment_dir / ".incoming").exists()


def test_a_diverged_cell_fails_once_and_is_not_retried(cluster: LocalCluster,
                                                       tmp_path: Path) -> None:
    raw = sweep_raw(open_gate(tmp_path), seeds=[0])
    raw["strategy"] = {"name": "diverging"}
    outcome = run_sweep(sweep_from_dict(raw, "ray.yaml"), tmp_path, backend="ray",
                        report=False, log=lambda _: None)
    (result,) = outcome.results.values()
    assert result.status == "failed" and result.error.startswith("DivergedError")
    (cell,) = status(tmp_path / "ray")["cells"]
    assert [a["outcome"] for a in cell["attempts"]] == ["failed"]


def test_each_cell_asks_for_a_whole_gpu_unless_told_otherwise(cluster: LocalCluster,
                                                              tmp_path: Path) -> None:
    gate = open_gate(tmp_path)
    gpu_cell, cpu_cell = sweep_from_dict({**sweep_raw(gate), "grid": {"device": ["auto", "cpu"]}},
                                         "ray.yaml").cells
    cluster_with_gpus = {"CPU": 4.0, "GPU": 2.0}
    assert cell_resources(gpu_cell, cluster_with_gpus, 1, RayOptions())["num_gpus"] == 1
    assert cell_resources(gpu_cell, cluster_with_gpus, 1,
                          RayOptions(gpus_per_cell=0.5))["num_gpus"] == 0.5
    assert cell_resources(gpu_cell, {"CPU": 4.0}, 1, RayOptions())["num_gpus"] == 0
    assert cell_resources(cpu_cell, cluster_with_gpus, 1, RayOptions())["num_gpus"] == 0

    # a node with two CPUs and one stand-in GPU: its two cells run one after the other
    node = cluster.add_worker(num_cpus=2, resources={"fake_gpu": 1})
    try:
        spec = sweep_from_dict(sweep_raw(gate, device=["auto"]), "ray.yaml")
        options = RayOptions(accelerator="fake_gpu")
        results = [result for _, result in run_ray(spec.cells, str(tmp_path),
                                                   options=options, echo=None)]
    finally:
        cluster.cluster.remove_node(node)
    assert [r.status for r in results] == ["complete"] * 2
    first, second = sorted((r.attempts[0] for r in results), key=lambda a: a["started"])
    assert first["node_id"] == second["node_id"] == node.node_id
    assert first["ended"] <= second["started"]


def test_a_run_folder_larger_than_the_object_store_comes_home(cluster: LocalCluster,
                                                              tmp_path: Path) -> None:
    size = 150 * MB  # more than any node's object store (100 MB)
    inbox = ray.remote(CellInbox).options(num_cpus=0).remote(str(tmp_path))

    def send_from_a_worker(inbox) -> dict:
        import shutil

        scratch = Path(tempfile.mkdtemp())
        maps = scratch / "cell-1" / "maps"
        maps.mkdir(parents=True)
        with (maps / "big.npy").open("wb") as fh:
            for _ in range(size // MB):
                fh.write(os.urandom(MB))
        try:
            return send_folder(ray, inbox, scratch, "cell-1", 1)
        finally:
            shutil.rmtree(scratch)

    listing = ray.get(ray.remote(num_cpus=1)(send_from_a_worker).remote(inbox))
    land_files(tmp_path, "cell-1", 1, listing)
    landed = tmp_path / "cell-1" / "maps" / "big.npy"
    assert landed.stat().st_size == size
    assert file_digest(landed) == listing["cell-1/maps/big.npy"]["sha256"]
    assert ray.get(inbox.largest_chunk_received.remote()) == CHUNK_BYTES
