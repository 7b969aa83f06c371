"""Hand-built run folders with known result matrices, for the report tests (see conftest.py).

``make_experiment`` writes results/<experiment>/<run_id>/{records.csv, manifest.json,
config.yaml, maps/} for 2 methods (stpm, hybrid) x 3 seeds x 3 tasks, one run folder per
(method, seed), with the matrices of ``known_matrix``. The expected summary numbers are worked
out by hand in test_tables.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from cl_bench.records import COLUMNS

TASKS = ("bottle", "cable", "metal_nut")
BASELINE = np.array([0.50, 0.52, 0.48])
BASE_R = {
    "hybrid": np.array([[0.90, 0.60, 0.55], [0.80, 0.92, 0.60], [0.75, 0.85, 0.95]]),
    "stpm": np.array([[0.85, 0.50, 0.50], [0.70, 0.88, 0.55], [0.60, 0.70, 0.90]]),
}
#: per-seed shift of every trained cell: hybrid +0.01 * seed, stpm +0.02 * seed
SEED_SHIFT = {"hybrid": 0.01, "stpm": 0.02}
#: pixel AUROC = image AUROC - 0.05 everywhere
PIXEL_OFFSET = -0.05


def known_matrix(method: str, seed: int, metric: str = "image_auroc") -> np.ndarray:
    offset = PIXEL_OFFSET if metric == "pixel_auroc" else 0.0
    return BASE_R[method] + SEED_SHIFT[method] * seed + offset


def known_baseline(metric: str = "image_auroc") -> np.ndarray:
    return BASELINE + (PIXEL_OFFSET if metric == "pixel_auroc" else 0.0)


def known_pooled(method: str, seed: int, step: int) -> float:
    return 0.7 + 0.05 * step + (0.02 if method == "hybrid" else 0.0) + 0.005 * seed


def write_run(root: Path, run_id: str, method: str, seed: int, *, strategy: str = "naive",
              order: str = "alphabetical", tasks=TASKS, steps=None, status: str = "complete",
              metrics=("image_auroc", "pixel_auroc"), maps: bool = False,
              task_aware: bool = False, fpr_limit: float | None = None,
              shift: float = 0.0, detectors: list[dict] | str | None = "registry") -> Path:
    """One run folder; ``steps`` limits the trained steps written (a run still running);
    ``detectors``: the manifest's ``detectors`` (``"registry"``: as a run records them, from the
    detector registry; None: no such key, as in runs made before it was recorded);
    ``shift`` is added to every trained cell of the known matrix;
    ``fpr_limit`` writes ``eval.pro_fpr_limit`` into config.yaml (AU-PRO records take the
    image AUROC values)."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    T = len(tasks)
    if steps is None:
        steps = [T - 1] if strategy == "joint" else list(range(T))
    rows = []
    for metric in metrics:
        base = known_baseline(metric)
        R = known_matrix(method, seed, metric) + shift
        for step in [-1, *steps]:
            train_task = "" if step < 0 else ("joint" if strategy == "joint" else tasks[step])
            for j, task in enumerate(tasks):
                value = base[j % 3] if step < 0 else R[step, j]
                rows.append([run_id, method, strategy, task_aware, seed, order, step,
                             train_task, task, j, metric, repr(float(value))])
            if step >= 0:
                rows.append([run_id, method, strategy, task_aware, seed, order, step, train_task,
                             "pooled", -1, metric, repr(known_pooled(method, seed, step))])
    with (run_dir / "records.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    manifest = {
        "run_id": run_id, "experiment": root.name, "status": status,
        "versions": {"python": "3.11.0", "torch": "2.14.1"}, "device": "cpu",
        "git_commit": "0123456789abcdef", "started": "2026-11-28T10:00:00+00:00",
        "finished": "2026-11-28T10:05:00+00:00" if status == "complete" else None,
        "durations": {"steps": [{"method": method, "seed": seed, "step": s, "train_s": 2.0,
                                 "eval_s": 1.0} for s in steps], "total_s": 300.0},
        "peak_memory_mb": 812.5,
    }
    if detectors == "registry":
        from strategies.detectors import detector_looks

        detectors = detector_looks()
    if detectors is not None:
        manifest["detectors"] = detectors
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "config.yaml").write_text(
        f"experiment: {root.name}\nseed: {seed}\nmodel:\n  methods: [{method}]\n"
        "train:\n  epochs: 1\n"
        + (f"eval:\n  pro_fpr_limit: {fpr_limit}\n" if fpr_limit is not None else ""))
    if maps:
        write_maps(run_dir, method, strategy, seed, tasks)
    return run_dir


def write_maps(run_dir: Path, method: str, strategy: str, seed: int, tasks=TASKS,
               per_task: int = 2, size: int = 16) -> Path:
    rng = np.random.default_rng(seed)
    n = per_task * len(tasks)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    masks[::2, 4:8, 4:8] = 1
    path = run_dir / "maps" / f"{method}__{strategy}__seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, images=rng.integers(0, 255, (n, 3, size, size), dtype=np.uint8), masks=masks,
        maps=rng.random((n, size, size), dtype=np.float32),
        tasks=np.repeat(np.array(tasks), per_task), labels=np.tile([1, 0], len(tasks)))
    return path


def make_experiment(root: Path, seeds=(0, 1, 2), methods=("stpm", "hybrid"),
                    maps: bool = True) -> Path:
    """results/<experiment>/ with one complete run folder per (method, seed)."""
    experiment = root / "toy_experiment"
    for method in methods:
        for seed in seeds:
            write_run(experiment, f"20261128T100000-{method}{seed}", method, seed,
                      maps=maps and seed == 0)
    return experiment
