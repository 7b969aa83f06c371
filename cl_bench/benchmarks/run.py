"""``cl-bench bench run``: the whole-run figure, teacher cache off vs on, per method.

For each method of ``--config`` (default ``experiments/mvtec_mini.yaml``) the experiment is run
twice in a subprocess, ``cl-bench run CONFIG --set model.methods=[METHOD] --no-report``, first
with ``performance.teacher_cache=false`` then ``true`` (plus any ``--set`` given here), into a
temporary folder. From each run's ``manifest.json`` it reads the training and evaluation seconds
of every step (``steps[*].train_s``, ``eval_s``) and prints per method: the wall time of the
subprocess (imports and data loading included), the run's ``total_s``, the training and the
evaluation time, and the ratios off/on. It then compares the two runs' ``records.csv`` (max
absolute difference per metric over every record) and their saved anomaly maps
(``maps/*.npz``, after the final task): the cache's effect on the results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cl_bench.errors import ConfigError, RunError

CACHE_KEYS = ("teacher_cache", "teacher_cache_mb", "teacher_cache_dtype")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="whole-run wall time per method, teacher cache off vs on",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="experiments/mvtec_mini.yaml", help="experiment YAML")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods (default: the config's model.methods)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to every run, e.g. data.categories=[bottle]")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--cache-mb", type=int, default=None,
                   help="performance.teacher_cache_mb of the cached run")
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default=None,
                   help="performance.teacher_cache_dtype of the cached run")
    p.add_argument("--threads", type=int, default=None, help="num_threads of the runs")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="also print one JSON line per method")
    p.set_defaults(func=run)


def check_cache_keys() -> None:
    """The ``performance.teacher_cache*`` keys must exist in the config schema."""
    from cl_bench.config import ExperimentConfig

    section = ExperimentConfig.model_fields.get("performance")
    fields = getattr(getattr(section, "annotation", None), "model_fields", {})
    missing = [key for key in CACHE_KEYS if key not in fields]
    if missing:
        raise ConfigError(
            "this version's config schema has no performance." + ", performance.".join(missing)
            + "; the teacher cache cannot be switched per run")


def step_times(manifest: dict, method: str) -> tuple[float, float]:
    steps = [s for s in manifest.get("steps", []) if s.get("method") == method]
    return (sum(float(s.get("train_s", 0.0)) for s in steps),
            sum(float(s.get("eval_s", 0.0)) for s in steps))


def one_run(config: str, overrides: list[str], out: Path) -> tuple[Path, float]:
    """``cl-bench run`` in a subprocess; return its run folder and wall seconds."""
    command = [sys.executable, "-m", "cl_bench.cli", "run", config, "--out", str(out),
               "--no-report", "--no-progress"]
    for text in overrides:
        command += ["--set", text]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-8:]
        raise RunError(f"cl-bench run {config} {' '.join(overrides)} failed:\n  "
                       + "\n  ".join(tail))
    manifests = sorted(out.glob("*/*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise RunError(f"the run wrote no manifest.json under {out}")
    return manifests[-1].parent, wall


def compare_records(off_dir: Path, on_dir: Path) -> dict[str, float]:
    """Max |value_on - value_off| per metric over all records (NaN pairs ignored)."""
    import pandas as pd

    keys = ["method", "seed", "step", "eval_task", "metric"]
    off = pd.read_csv(off_dir / "records.csv")
    on = pd.read_csv(on_dir / "records.csv")
    merged = off.merge(on, on=keys, suffixes=("_off", "_on"), how="outer", indicator=True)
    if (merged["_merge"] != "both").any():
        raise RunError(f"records of {off_dir} and {on_dir} do not cover the same cells")
    diff = (merged["value_on"] - merged["value_off"]).abs()
    return {str(k): float(v) for k, v in diff.groupby(merged["metric"]).max().items()}


def compare_maps(off_dir: Path, on_dir: Path) -> tuple[float, float]:
    """(max |map_on - map_off|, max |map_off|) over the saved maps after the final task."""
    import numpy as np

    worst, scale = 0.0, 0.0
    for path in sorted((off_dir / "maps").glob("*.npz")):
        other = on_dir / "maps" / path.name
        if not other.is_file():
            raise RunError(f"{other} is missing (the cached run saved other maps)")
        with np.load(path) as a, np.load(other) as b:
            worst = max(worst, float(np.abs(a["maps"] - b["maps"]).max()))
            scale = max(scale, float(np.abs(a["maps"]).max()))
    return worst, scale


def run(args: argparse.Namespace) -> int:
    from cl_bench.config import load_config

    check_cache_keys()
    base = list(args.overrides)
    if args.epochs is not None:
        base.append(f"train.epochs={args.epochs}")
    if args.threads is not None:
        base.append(f"num_threads={args.threads}")
    cfg = load_config(args.config, base)  # fails early, naming the bad key
    methods = ([m.strip() for m in args.methods.split(",") if m.strip()] if args.methods
               else list(cfg.model.methods))
    cached = ["performance.teacher_cache=true"]
    if args.cache_mb is not None:
        cached.append(f"performance.teacher_cache_mb={args.cache_mb}")
    if args.cache_dtype is not None:
        cached.append(f"performance.teacher_cache_dtype={args.cache_dtype}")
    for method in methods:  # validate every method before the first long run
        load_config(args.config, [*base, f"model.methods=[{method}]", *cached])
    resolved = load_config(args.config, [*base, *cached]).performance
    print(f"# config {args.config}: {len(cfg.data.categories or []) or 'all'} categories, "
          f"{cfg.train.epochs} epochs, backbone {cfg.model.backbone}, image size "
          f"{cfg.data.image_size}, overrides {base}; cache: {resolved.teacher_cache_mb} MB "
          f"{resolved.teacher_cache_dtype}")
    print(f"{'method':<8} {'cache':<5} {'wall_s':>8} {'total_s':>8} {'train_s':>8} {'eval_s':>8}")
    with tempfile.TemporaryDirectory(prefix="cl-bench-run-") as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        for method in methods:
            figures = {}
            for label, extra in (("off", ["performance.teacher_cache=false"]), ("on", cached)):
                overrides = [*base, f"model.methods=[{method}]", *extra]
                run_dir, wall = one_run(args.config, overrides, root / method / label)
                manifest = json.loads((run_dir / "manifest.json").read_text())
                train_s, eval_s = step_times(manifest, method)
                figures[label] = {"wall_s": wall, "total_s": float(manifest.get("total_s", 0.0)),
                                  "train_s": train_s, "eval_s": eval_s, "run_dir": str(run_dir)}
                f = figures[label]
                print(f"{method:<8} {label:<5} {wall:>8.1f} {f['total_s']:>8.1f} "
                      f"{train_s:>8.1f} {eval_s:>8.1f}", flush=True)
            off, on = figures["off"], figures["on"]
            ratios = {k: off[k] / on[k] if on[k] > 0 else float("nan")
                      for k in ("wall_s", "total_s", "train_s", "eval_s")}
            print(f"{method:<8} {'off/on':<5} " + " ".join(
                f"{ratios[k]:>8.2f}" for k in ("wall_s", "total_s", "train_s", "eval_s")))
            diffs = compare_records(Path(off["run_dir"]), Path(on["run_dir"]))
            map_diff, map_scale = compare_maps(Path(off["run_dir"]), Path(on["run_dir"]))
            print(f"{method:<8} cache on vs off: max |record difference| "
                  + ", ".join(f"{k} {v:.1e}" for k, v in sorted(diffs.items()))
                  + f"; max |map difference| {map_diff:.1e} (maps up to {map_scale:.2g})",
                  flush=True)
            if args.json:
                print(json.dumps({"method": method, "off": off, "on": on, "ratios": ratios,
                                  "record_max_abs_diff": diffs, "map_max_abs_diff": map_diff}))
    return 0
