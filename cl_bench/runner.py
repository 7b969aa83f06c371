"""The experiment runner: one configuration -> a run folder with records, checkpoints and a report.

Protocol (DESIGN.md, "Protocol"): for each method and seed, evaluate the untrained model on every
task (step -1), then train the tasks in order and, after each, evaluate the same model on every
task (the full T x T matrix) and the pooled, task-agnostic metric over the test images of the
tasks seen so far. ``joint`` trains one model on all categories (rows -1 and T-1);
``independent`` trains one detector per task and tests each task with its own detector (a
task-aware oracle, labelled ``task_aware=True``).

Every step ends with its records appended to ``records.csv``, the students' checkpoint and the
manifest written; ``resume`` continues after the last completed step and reproduces the records
of an uninterrupted run exactly (each step re-seeds every generator from (seed, step)).
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from cl_bench.config import ExperimentConfig, to_yaml, validate
from cl_bench.errors import ConfigError, RunError
from cl_bench.io import atomic_write_text
from cl_bench.manifest import Manifest
from cl_bench.records import RecordWriter
from cl_bench.run_context import Log, RunContext
from strategies.errors import DivergedError


# ---- small helpers ----------------------------------------------------------------------------
def new_run_id() -> str:
    """``<UTC time>-<6 random hex>``: unique even for runs started in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def resolve_device(requested: str, log: Log) -> tuple[torch.device, str]:
    """``auto`` -> CUDA when present, else the CPU (said on the console and in the manifest)."""
    if requested == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        else:
            device = torch.device("cpu")
            log("device: auto -> cpu (no CUDA device found)")
    else:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"device: {requested!r} was asked for but torch finds no CUDA device; "
                "set device=auto or device=cpu"
            )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"device: {device} ({name})")
    return device, name


# ---- data --------------------------------------------------------------------------------------
def data_root(cfg: ExperimentConfig, log: Log) -> Any:
    """Where the tasks come from: the synthetic root (a Path), ``data.root`` in its
    ``data.format`` (a :class:`~cl_bench.data.Source`) or ``data.sources`` (a
    :class:`~cl_bench.data.Sources`); ``build_benchmark`` and ``list_categories`` take each."""
    from cl_bench.data import Source, Sources, ensure_synthetic

    if cfg.data.source == "folder" and cfg.data.sources:
        sources = []
        for i, spec in enumerate(cfg.data.sources):
            root = Path(os.path.expanduser(spec.root))
            if not root.is_dir():
                raise ConfigError(
                    f"data.sources[{i}].root: folder {root} (source {spec.name!r}) does not "
                    "exist; set it to the dataset's root (docs/datasets.md)"
                )
            categories = tuple(spec.categories) if spec.categories else None
            sources.append(Source(root, spec.format, spec.name, categories))
        return Sources(sources)
    if cfg.data.source == "folder":
        root = Path(os.path.expanduser(cfg.data.root or ""))
        if not root.is_dir():
            raise ConfigError(
                f"data.root: folder {root} does not exist; set data.root to the dataset's root "
                "folder (layouts: docs/datasets.md)"
            )
        return Source(root, cfg.data.format)
    syn = cfg.data.synthetic
    root = ensure_synthetic(
        n_categories=syn.categories, n_train=syn.train, n_test=syn.test, size=syn.size,
        seed=syn.seed,
    )
    log(f"data: synthetic MVTec-like set at {root}")
    return Path(root)


def order_label(cfg: ExperimentConfig) -> str:
    order = cfg.data.order
    if cfg.data.order_name:
        return cfg.data.order_name
    if isinstance(order, list):
        return "custom:" + ">".join(order)
    return f"random{cfg.data.order_seed}" if order == "random" else order


# ---- the run -----------------------------------------------------------------------------------
def start_run(cfg: ExperimentConfig, out_root: Path, log: Log,
              run_id: str | None = None) -> tuple[Path, str]:
    run_id = run_id or new_run_id()
    run_dir = Path(out_root) / cfg.experiment / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunError(f"run folder {run_dir} exists already; resume it with --resume "
                       f"{run_dir} or choose another run id") from None
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    log(f"run folder: {run_dir}")
    return run_dir, run_id


#: keys added to the config schema after runs were written, with the value that reproduces
#: what the older version did (a resumed run must continue as it started, not on new defaults)
LEGACY_DEFAULTS: dict[tuple[str, ...], Any] = {("train", "optimizer", "fused"): False,
                                               ("strategy", "replay", "mode"): "additive"}


def fill_legacy_defaults(raw: dict[str, Any]) -> list[str]:
    """Set :data:`LEGACY_DEFAULTS` missing from a saved config in place; return what was set."""
    filled = []
    for path, value in LEGACY_DEFAULTS.items():
        section = raw
        for key in path[:-1]:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict) and path[-1] not in section:
            section[path[-1]] = value
            filled.append(f"{'.'.join(path)}={value!r}")
    return filled


def load_run_for_resume(run_dir: Path, log: Log = print) -> tuple[ExperimentConfig, Manifest]:
    import yaml

    run_dir = Path(run_dir)
    config_path, manifest_path = run_dir / "config.yaml", run_dir / "manifest.json"
    for path in (config_path, manifest_path, run_dir / "records.csv"):
        if not path.is_file():
            raise RunError(
                f"--resume {run_dir}: {path.name} is missing; give the folder of a run that "
                "cl-bench run created (results/<experiment>/<run_id>)"
            )
    raw = yaml.safe_load(config_path.read_text()) or {}
    filled = fill_legacy_defaults(raw)
    cfg = validate(raw, source=str(config_path))
    try:
        manifest = Manifest.load(manifest_path)
    except ValueError as exc:
        raise RunError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if manifest.data.get("status") == "complete":
        raise RunError(f"--resume {run_dir}: the run is already complete; nothing to resume")
    if filled:
        message = (f"{config_path.name} predates {', '.join(filled)}: resumed with the "
                   "behaviour of the version that started the run")
        log(f"warning: {message}")
        manifest.warn(message)
    return cfg, manifest


def run_experiment(
    cfg: ExperimentConfig,
    out_root: str | Path = "results",
    resume: str | Path | None = None,
    log: Log = print,
    progress: bool | None = None,
    run_id: str | None = None,
) -> Path:
    """Run (or resume) every method x seed cell of ``cfg``; return the run folder.

    ``run_id`` names the run folder (default: a timestamp and a random suffix); sweeps pass a
    name derived from the cell so that a restarted sweep finds its completed cells.
    """
    import warnings

    with warnings.catch_warnings():
        # avalanche imports qpsolvers (for GEM), which warns that no QP solver is installed
        warnings.filterwarnings("ignore", message="no QP solver found")
        import avalanche.training  # noqa: F401

    from cl_bench.data import ImageCache, build_benchmark

    if resume is not None:
        cfg, manifest = load_run_for_resume(Path(resume), log)
        run_dir, run_id = Path(resume), manifest.data["run_id"]
        manifest.data["status"] = "running"
        manifest.data.setdefault("resumed", []).append(
            datetime.now(timezone.utc).isoformat(timespec="seconds"))
        log(f"resuming run {run_id} in {run_dir}")
    else:
        run_dir, run_id = start_run(cfg, Path(out_root), log, run_id)
        manifest = Manifest.create(run_dir / "manifest.json", run_id=run_id,
                                   experiment=cfg.experiment)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device, device_name = resolve_device(cfg.device, log)
    manifest.data.update(device=str(device), device_name=device_name,
                         torch_threads=torch.get_num_threads())
    if cfg.device == "auto" and device.type == "cpu":
        manifest.warn("device auto: no CUDA device found, ran on the CPU")
    if cfg.model.weights == "none":
        message = ("model.weights is 'none': the teacher has random weights; fine for tests and "
                   "timing, never for a result you report")
        log(f"warning: {message}")
        manifest.warn(message)
    if cfg.performance.autocast_bf16 and device.type != "cuda":
        log("performance.autocast_bf16 applies on CUDA only; ignored on the CPU")
        manifest.warn("performance.autocast_bf16 ignored: not on CUDA")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    started = time.perf_counter()
    ctx: RunContext | None = None
    try:
        root = data_root(cfg, log)
        order = cfg.data.order
        if order == "reversed":
            from cl_bench.data import list_categories

            order = sorted(cfg.data.categories or list_categories(root), reverse=True)
        tasks = build_benchmark(
            root, categories=cfg.data.categories, order=order, seed=cfg.data.order_seed,
            image_size=cfg.data.image_size, joint=cfg.strategy.name == "joint",
            cache=ImageCache(max_mb=cfg.data.cache_mb),
        )
        ctx = RunContext(cfg, run_dir, run_id, device, manifest, RecordWriter(
            run_dir / "records.csv"), log, order_label(cfg), list(tasks.categories))
        manifest.data.update(data_root=str(root), categories=ctx.categories,
                             order=ctx.order_name, seeds=cfg.seeds, methods=cfg.model.methods,
                             strategy=cfg.strategy.name)
        manifest.save()
        if resume is not None:
            _drop_incomplete_rows(ctx)
        from cl_bench.cell import run_cell

        for method in cfg.model.methods:
            for seed in cfg.seeds:
                run_cell(ctx, tasks, method, seed, progress=progress)
    except (DivergedError, KeyboardInterrupt, Exception) as exc:
        manifest.data["status"] = "failed"
        manifest.data["error"] = f"{type(exc).__name__}: {exc}"
        manifest.data["total_s"] = manifest.data.get("total_s", 0.0) + time.perf_counter() - started
        manifest.save()
        raise
    manifest.data["status"] = "complete"
    manifest.data["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest.data["total_s"] = manifest.data.get("total_s", 0.0) + time.perf_counter() - started
    manifest.save()
    return run_dir


def _drop_incomplete_rows(ctx: RunContext) -> None:
    """Before resuming: drop the rows of steps that had not completed (cut by the kill)."""
    cells = ctx.manifest.data.get("cells", {})

    def keep(row: dict[str, str]) -> bool:
        done = cells.get(ctx.cell_key(row["method"], int(row["seed"])), {})
        return int(row["step"]) <= done.get("completed_step", -2)

    dropped = ctx.records.rewrite(keep)
    if dropped:
        ctx.log(f"resume: dropped {dropped} record(s) of steps that had not completed")
