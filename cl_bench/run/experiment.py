"""The experiment runner: one configuration -> a run folder with records, checkpoints and a report.

Protocol (docs/running.md): for each method and seed, evaluate the untrained model on every
task (step -1), then train the tasks in order and, after each, evaluate the same model on every
task (the full T x T matrix) and the pooled, task-agnostic metric over the test images of the
tasks seen so far. What a step trains on follows the strategy's stream kind
(:mod:`strategies.continual.registry`): ``joint`` trains one model on all categories (rows -1 and
T-1), ``cumulative`` trains step i on tasks 0..i, ``per_task`` (``independent``) trains one detector
per task and tests each task with its own detector; a strategy that uses the task identity at
test time is labelled ``task_aware=True`` in the records.

Every step ends with its records appended to ``records.csv``, the students' checkpoint and the
manifest written; ``resume`` continues after the last completed step whose checkpoint is intact
and reproduces the records of an uninterrupted run exactly (each step re-seeds every generator
from (seed, step)). Device, data and weights are checked before the run folder is created; a
process holds the folder's lock while it writes it; the manifest ends ``complete``, ``failed``
(with the error) or ``interrupted`` (Ctrl-C, SIGTERM), never ``running`` (docs/running.md).
"""

from __future__ import annotations

import copy
import os
import secrets
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from cl_bench.config import ExperimentConfig, to_yaml, validate
from cl_bench.data import orders
from cl_bench.errors import ConfigError, RunError, RunInterrupted
from cl_bench.io import atomic_write_text
from cl_bench.manifest import Manifest, utc_now
from cl_bench.progress_settings import Progress, resolve_progress
from cl_bench.records import RecordWriter
from cl_bench.run.cells import run_cell
from cl_bench.run.context import Log, RunContext
from cl_bench.run.digest import config_changes, config_digest, describe_changes
from cl_bench.run.layout import RunLayout
from cl_bench.run.lock import RunLock
from cl_bench.run.rebuild import rebuild_lost_records
from cl_bench.run.resume import fall_back_to_intact_steps
from strategies.detectors import detector_looks
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
            return device, "cpu"
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
                    f"data.sources[{i}].root: {_not_a_folder(root, spec.name)}; set it to the "
                    "dataset's root folder (docs/datasets.md)"
                )
            categories = tuple(spec.categories) if spec.categories else None
            sources.append(Source(root, spec.format, spec.name, categories))
        return Sources(sources)
    if cfg.data.source == "folder":
        root = Path(os.path.expanduser(cfg.data.root or ""))
        if not root.is_dir():
            raise ConfigError(
                f"data.root: {_not_a_folder(root)}; set data.root to the dataset's root folder "
                "(layouts: docs/datasets.md)"
            )
        return Source(root, cfg.data.format)
    syn = cfg.data.synthetic
    root = ensure_synthetic(
        n_categories=syn.categories, n_train=syn.train, n_test=syn.test, size=syn.size,
        seed=syn.seed, lookalike=syn.lookalike, family=syn.family,
    )
    log(f"data: synthetic MVTec-like set at {root}")
    return Path(root)


def _not_a_folder(root: Path, source: str | None = None) -> str:
    """What ``root``, which is not a folder, is instead: a file (an archive not extracted?) or
    nothing; ``source`` names the data source it belongs to."""
    of = f" (source {source!r})" if source else ""
    if root.is_symlink() and not root.exists():
        return (f"{root}{of} is a symbolic link that loops or points to nothing; point it at "
                "the dataset's folder")
    if root.exists():
        return (f"{root}{of} is a file, not a folder (an archive not yet extracted?); extract "
                "it and give the folder")
    return f"folder {root}{of} does not exist"


def order_label(cfg: ExperimentConfig) -> str:
    """The ``order`` column of the run's records (:func:`cl_bench.data.orders.order_label`)."""
    return orders.order_label(cfg.data.order, cfg.data.order_seed, cfg.data.order_name)


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class Prepared:
    """What :func:`prepare_run` checked before anything is written: device, data, weights."""

    device: torch.device
    device_name: str
    root: Any  # a Path (synthetic), a Source or Sources (data_root); str() describes it
    tasks: Any
    warnings: list[str] = field(default_factory=list)


def prepare_run(cfg: ExperimentConfig, log: Log) -> Prepared:
    """Everything that can fail before training, checked before the run folder is touched.

    The device exists, the data folder has the expected layout and categories, every image and
    mask reads (:mod:`cl_bench.data.checks`; all problems named at once), and the teacher's
    weights load; each failure raises a :class:`~cl_bench.errors.CLBenchError` or
    :class:`~strategies.errors.StrategiesError` naming what to fix.
    """
    from cl_bench.data import ImageCache, build_benchmark
    from cl_bench.data.checks import benchmark_problems
    from cl_bench.data.layout import problems_error
    from cl_bench.data.mvtec import empty_mask_message

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device, device_name = resolve_device(cfg.device, log)
    notes = []
    if cfg.device == "auto" and device.type == "cpu":
        notes.append("device auto: no CUDA device found, ran on the CPU")
    if cfg.model.weights == "none":
        message = ("model.weights is 'none': the teacher has random weights; fine for tests and "
                   "timing, never for a result you report")
        log(f"warning: {message}")
        notes.append(message)
    if cfg.performance.autocast_bf16 and device.type != "cuda":
        log("performance.autocast_bf16 applies on CUDA only; ignored on the CPU")
        notes.append("performance.autocast_bf16 ignored: not on CUDA")
    root = data_root(cfg, log)
    problems: list[str] = []
    tasks = build_benchmark(
        root, categories=cfg.data.categories, order=cfg.data.order, seed=cfg.data.order_seed,
        image_size=cfg.data.image_size, joint=cfg.strategy.spec().stream == "joint",
        cumulative=cfg.strategy.spec().stream == "cumulative",
        cache=ImageCache(max_mb=cfg.data.cache_mb), problems=problems, tasks=cfg.data.tasks,
        allow_unused=cfg.data.allow_unused_categories,
    )
    problems += benchmark_problems([*tasks.train_datasets, *tasks.test_datasets])
    if problems:  # every file is checked, every problem named, before the run folder exists
        raise problems_error(problems, f"the data of this run ({root})")
    for test_set in tasks.test_datasets:  # kept as published, but said: console and manifest
        for mask_path in test_set.empty_masks():
            image_path = test_set.paths[list(test_set.mask_paths).index(mask_path)]
            message = empty_mask_message(mask_path, image_path)
            log(f"warning: {message}")
            notes.append(message)
    check_weights(cfg)
    return Prepared(device, device_name, root, tasks, notes)


def check_weights(cfg: ExperimentConfig) -> None:
    """Build the teacher once, so that missing or unreadable weights stop the run before it
    starts (:class:`~strategies.errors.WeightsError`)."""
    if cfg.model.weights == "none":
        return
    from strategies.teachers.backbones import build_teacher

    build_teacher(cfg.model.backbone, cfg.model.weights)


def check_out_writable(out_root: Path, experiment: str) -> None:
    """``--out``: the run folder ``out_root/experiment/<run_id>`` can be created."""
    target = Path(out_root) / experiment
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunError(f"--out {out_root}: {existing} is a file, not a folder; choose another "
                       "results folder with --out DIR")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"--out {out_root}: cannot create the run folder {target}/<run_id>: "
                       f"{existing} is not writable for this user; choose a writable results "
                       "folder with --out DIR (or ask the folder's owner for write access)")


def check_run_folder_writable(run_dir: Path) -> None:
    """``--resume``: every folder of the run and ``records.csv`` can be written."""
    paths = [run_dir, *sorted(p for p in run_dir.rglob("*") if p.is_dir()),
             RunLayout(run_dir).records]
    blocked = [p for p in paths if p.exists() and not os.access(p, os.W_OK)]
    if blocked:
        raise RunError(
            f"--resume {run_dir}: {blocked[0]} is not writable for this user ({len(blocked)} "
            f"path(s) in the run folder are read-only); nothing was changed. Make the folder "
            f"writable (chmod -R u+w {run_dir}, or ask its owner), or copy it "
            f"(cp -r {run_dir} NEW_DIR) and resume the copy with --resume NEW_DIR")


def start_run(cfg: ExperimentConfig, out_root: Path, log: Log,
              run_id: str | None = None) -> tuple[Path, str]:
    """Create the (empty) run folder ``out_root/<experiment>/<run_id>``."""
    run_id = run_id or new_run_id()
    run_dir = RunLayout.of(out_root, cfg.experiment, run_id).root
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunError(f"run folder {run_dir} exists already; resume it with --resume "
                       f"{run_dir} or choose another run id") from None
    except PermissionError as exc:
        raise RunError(f"--out {out_root}: cannot create {run_dir} ({exc.strerror}); choose a "
                       "writable results folder with --out DIR") from None
    log(f"run folder: {run_dir}")
    return run_dir, run_id


#: keys added to the config schema after runs were written, with the value that reproduces
#: what the older version did (a resumed run must continue as it started, not on new defaults)
LEGACY_DEFAULTS: dict[tuple[str, ...], Any] = {("train", "optimizer", "fused"): False,
                                               ("strategy", "replay", "mode"): "additive"}


#: strategies whose training changed when SI and feature distillation were re-implemented
#: (docs/strategies.md); a run started before that cannot be resumed with the same behaviour
REIMPLEMENTED_STRATEGIES = ("si", "feature_distillation")


def fill_legacy_defaults(raw: dict[str, Any]) -> list[str]:
    """Set :data:`LEGACY_DEFAULTS` missing from a saved config in place; return what was set.

    A config written before SI was re-implemented holds ``strategy.si.eps`` (now ``xi``): for a
    run of another strategy the key is renamed (it had no effect); an SI or feature-distillation
    run of that version is refused, since the resumed steps would train differently."""
    filled = []
    strategy = raw.get("strategy") if isinstance(raw, dict) else None
    si = strategy.get("si") if isinstance(strategy, dict) else None
    if isinstance(si, dict) and "eps" in si:
        name = strategy.get("name")
        if name in REIMPLEMENTED_STRATEGIES:
            raise RunError(
                f"this {name!r} run was started by a cl-bench version before SI and feature "
                "distillation were re-implemented (its config.yaml has strategy.si.eps); its "
                "remaining steps would train with another regulariser. Start a new run "
                "(docs/strategies.md, 'What changed')")
        si.setdefault("xi", si.pop("eps"))
        filled.append("strategy.si.xi (was strategy.si.eps)")
    for path, value in LEGACY_DEFAULTS.items():
        section = raw
        for key in path[:-1]:
            section = section.get(key) if isinstance(section, dict) else None
        if isinstance(section, dict) and path[-1] not in section:
            section[path[-1]] = value
            filled.append(f"{'.'.join(path)}={value!r}")
    return filled


def _read_run_config(config_path: Path) -> dict[str, Any]:
    """The saved ``config.yaml`` of a run, or a :class:`RunError` saying how to repair it."""
    repair = ("it must be the configuration the run started with: repair it by hand (a "
              "different value would make the resumed records differ from the first ones), or "
              "start a new run with cl-bench run CONFIG")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RunError(f"{config_path}: not a text file ({exc.reason} at byte {exc.start}); "
                       f"{repair}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RunError(f"{config_path}: not valid YAML{at} ({problem}); {repair}") from None
    if not isinstance(raw, dict):
        raise RunError(f"{config_path}: the top level must be a mapping of keys, got a "
                       f"{type(raw).__name__}; {repair}")
    return raw


def check_run_files(run_dir: Path) -> None:
    """``--resume``: ``run_dir`` is the folder of a run (config and manifest; a missing
    ``records.csv`` is rebuilt from the checkpoints, :mod:`cl_bench.run.rebuild`)."""
    if not run_dir.is_dir():
        raise RunError(f"--resume {run_dir}: no such folder; give the folder of a run that "
                       "cl-bench run created (results/<experiment>/<run_id>)")
    layout = RunLayout(run_dir)
    for path in (layout.config, layout.manifest):  # a lost records.csv is rebuilt (rebuild.py)
        if not path.is_file():
            raise RunError(
                f"--resume {run_dir}: {path.name} is missing; give the folder of a run that "
                "cl-bench run created (results/<experiment>/<run_id>)"
            )


def load_run_for_resume(run_dir: Path, log: Log = print,
                        allow_config_change: bool = False) -> tuple[ExperimentConfig, Manifest]:
    """The saved configuration and manifest of ``run_dir``; reads only (a legacy-default warning,
    a digest recorded now or an allowed configuration change is added to the manifest in memory
    and saved with the manifest's next save).

    ``config.yaml`` must be the configuration the run began with (:func:`check_config_digest`);
    ``allow_config_change`` accepts a changed one and records the change in the manifest."""
    run_dir = Path(run_dir)
    check_run_files(run_dir)
    config_path, manifest_path = RunLayout(run_dir).config, RunLayout(run_dir).manifest
    raw = _read_run_config(config_path)
    as_written = copy.deepcopy(raw)
    filled = fill_legacy_defaults(raw)
    try:
        cfg = validate(raw, source=str(config_path))
    except ConfigError as exc:
        raise RunError(f"{exc}\n{config_path} must hold the configuration the run started "
                       "with: repair it by hand, or start a new run") from None
    try:
        manifest = Manifest.load(manifest_path)
    except ValueError as exc:
        raise RunError(f"{manifest_path}: not valid JSON ({exc}); restore it or start a new "
                       "run") from None
    if not isinstance(manifest.data, dict) or not manifest.run_id:
        raise RunError(f"{manifest_path}: not a cl-bench manifest (no run_id); restore it or "
                       "start a new run")
    if manifest.status == "complete" and RunLayout(run_dir).records.is_file():
        raise RunError(f"--resume {run_dir}: the run is already complete; nothing to resume")
    check_config_digest(run_dir, as_written, manifest, log, allow_config_change)
    if filled:
        message = (f"{config_path.name} predates {', '.join(filled)}: resumed with the "
                   "behaviour of the version that started the run")
        log(f"warning: {message}")
        manifest.warn(message, save=False)
    return cfg, manifest


def check_config_digest(run_dir: Path, config: dict[str, Any], manifest: Manifest, log: Log,
                        allow_change: bool) -> None:
    """Refuse to resume a run whose ``config.yaml`` differs from the one it began with.

    The run's manifest holds the digest (:func:`cl_bench.run.digest.config_digest`) and the
    configuration at the start; a different digest is a :class:`RunError` naming every key that
    differs (old -> new), unless ``allow_change``: then the change is recorded in the manifest
    (``config_changes``: when, which keys, old and new values) and the new configuration becomes
    the reference. A run begun before digests existed has none: it is recorded now, with a
    warning that the earlier steps cannot be checked.
    """
    digest = config_digest(config)
    recorded = manifest.data.get("config_digest")
    config_path = RunLayout(run_dir).config
    if recorded is None:
        message = (f"{config_path} could not be checked against the configuration the run "
                   "began with: the run was started by a cl-bench version that recorded no "
                   "digest of it. Its digest is recorded now; later resumes are checked")
        log(f"warning: {message}")
        manifest.warn(message, save=False)
        manifest.describe_run(config_digest=digest, config_at_start=config)
        return
    if digest == recorded:
        return
    started = manifest.data.get("config_at_start")
    changes = config_changes(started, config) if isinstance(started, dict) else {}
    what = describe_changes(changes) if changes else "the recorded copy is missing"
    if not allow_change:
        raise RunError(
            f"--resume {run_dir}: {config_path.name} was changed since the run began ({what}); "
            "the remaining steps would follow another protocol than the completed ones. "
            f"Restore the original value(s) in {config_path}, or start a new run with the "
            "changed configuration (cl-bench run CONFIG); to continue with the change on "
            "purpose, add --allow-config-change (recorded in manifest.json)")
    message = (f"{config_path.name} changed since the run began, resumed with "
               f"--allow-config-change: {what}")
    log(f"warning: {message}")
    manifest.warn(message, save=False)
    manifest.data.setdefault("config_changes", []).append({
        "at": utc_now(), "from_digest": recorded, "to_digest": digest,
        "keys": {key: {"old": old, "new": new} for key, (old, new) in changes.items()}})
    manifest.describe_run(config_digest=digest, config_at_start=config)


def resume_command(run_dir: Path) -> str:
    """The command that continues ``run_dir``, quoted for a POSIX shell."""
    return f"cl-bench run --resume {shlex.quote(str(run_dir))}"


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while the final status is written (a second Ctrl-C must not cut
    the manifest's last save); only the main thread can change signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def run_experiment(
    cfg: ExperimentConfig,
    out_root: str | Path = "results",
    resume: str | Path | None = None,
    log: Log = print,
    progress: Progress | str | bool | None = None,
    run_id: str | None = None,
    allow_config_change: bool = False,
) -> Path:
    """Run (or resume) every method x seed cell of ``cfg``; return the run folder.

    ``run_id`` names the run folder (default: a timestamp and a random suffix); sweeps pass a
    name derived from the cell so that a restarted sweep finds its completed cells. Device, data
    and weights are checked (:func:`prepare_run`) before the run folder is created or, on resume,
    changed; the folder is locked (:class:`~cl_bench.run.lock.RunLock`) while this writes it.
    A signal ends in :class:`~cl_bench.errors.RunInterrupted` with the run marked
    ``interrupted``; any other error marks it ``failed`` and propagates. A resume refuses a
    ``config.yaml`` changed since the run began unless ``allow_config_change``
    (:func:`check_config_digest`).
    """
    if resume is not None:
        run_dir = Path(resume)
        # read-only checks first: a folder that is not a resumable run gets no lock file
        check_run_files(run_dir)
        check_run_folder_writable(run_dir)
        load_run_for_resume(run_dir, lambda _: None, allow_config_change)
        with RunLock(run_dir):
            _import_avalanche()
            cfg, manifest = load_run_for_resume(run_dir, log, allow_config_change)
            run_id = manifest.run_id
            if manifest.status == "running":
                log(f"note: {run_dir} says 'running' but no process holds it: the process that "
                    "wrote it was killed")
            prepared = prepare_run(cfg, log)
            records_lost = not RunLayout(run_dir).records.is_file()
            if records_lost:
                log(f"note: {RunLayout(run_dir).records} is missing: its rows are rebuilt by "
                    "evaluating the kept checkpoints again")
            manifest.note_resumed()
            manifest.mark("running")
            log(f"resuming run {run_id} in {run_dir}")
            return _run(cfg, run_dir, run_id, manifest, prepared, log, progress, resumed=True,
                        records_lost=records_lost)
    check_out_writable(Path(out_root), cfg.experiment)
    _import_avalanche()
    prepared = prepare_run(cfg, log)
    run_dir, run_id = start_run(cfg, Path(out_root), log, run_id)
    lock = RunLock(run_dir)
    try:
        lock.acquire()
        text = to_yaml(cfg)
        atomic_write_text(RunLayout(run_dir).config, text)
        written = yaml.safe_load(text)
        manifest = Manifest.create(RunLayout(run_dir).manifest, run_id=run_id,
                                   experiment=cfg.experiment,
                                   config_digest=config_digest(written), config_at_start=written)
    except BaseException as exc:  # a full disk, say: no folder that holds no run is left
        lock.release()
        shutil.rmtree(run_dir, ignore_errors=True)
        with suppress(AttributeError, TypeError):
            exc.run_hint = (f"nothing was run; the new run folder {run_dir} was removed "  # type: ignore[attr-defined]
                            "again (it held nothing yet)")
        raise
    try:
        return _run(cfg, run_dir, run_id, manifest, prepared, log, progress, resumed=False)
    finally:
        lock.release()


def _import_avalanche() -> None:
    import warnings

    with warnings.catch_warnings():
        # avalanche imports qpsolvers (for GEM), which warns that no QP solver is installed
        warnings.filterwarnings("ignore", message="no QP solver found")
        import avalanche.training  # noqa: F401


def _run(cfg: ExperimentConfig, run_dir: Path, run_id: str, manifest: Manifest,
         prepared: Prepared, log: Log, progress: Progress | str | bool | None,
         resumed: bool, records_lost: bool = False) -> Path:
    """The cells of a prepared, locked run folder; the final status in every outcome."""
    started = time.perf_counter()

    def add_time() -> None:
        manifest.add_time(time.perf_counter() - started)

    try:
        device = prepared.device
        manifest.describe_run(device=str(device), device_name=prepared.device_name,
                              torch_threads=torch.get_num_threads())
        for message in prepared.warnings:
            manifest.warn(message)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        tasks = prepared.tasks
        ctx = RunContext(cfg, run_dir, run_id, device, manifest,
                         RecordWriter(RunLayout(run_dir).records), log, order_label(cfg),
                         list(tasks.categories), tasks.task_columns or [])
        if tasks.task_columns:  # tasks of several categories (data.tasks): their composition
            manifest.describe_run(tasks=[[ctx.categories[j] for j in cols]
                                         for cols in ctx.groups])
        manifest.describe_run(data_root=str(prepared.root), categories=ctx.categories,
                              order=ctx.order_name, seeds=cfg.seeds, methods=cfg.model.methods,
                              detectors=detector_looks(), strategy=cfg.strategy.name)
        manifest.save()
        if resumed:
            if records_lost:
                rebuild_lost_records(ctx, tasks)
            completed = {key: cell.get("completed_step", -2)
                         for key, cell in ctx.manifest.cells.items()}
            fall_back_to_intact_steps(ctx)
            _drop_incomplete_rows(ctx, completed)
        shown = resolve_progress(progress, task_names=tuple(ctx.task_names),
                                 joint=cfg.strategy.spec().stream == "joint",
                                 log=_flushed(log))
        for method in cfg.model.methods:
            for seed in cfg.seeds:
                run_cell(ctx, tasks, method, seed, progress=shown)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into Stopped by the CLI
        signum = getattr(exc, "signum", signal.SIGINT)
        with _signals_held():
            add_time()
            manifest.mark_interrupted(signal.Signals(signum).name)
        raise RunInterrupted(
            f"interrupted by {signal.Signals(signum).name}; {run_dir} is marked 'interrupted' "
            f"and keeps every completed step ({_progress_summary(manifest)}). "
            f"Continue it with:\n  {resume_command(run_dir)}", signum) from None
    except BaseException as exc:
        marked = True
        with _signals_held():
            add_time()
            for cell in manifest.cells.values():  # the cell that was running failed with it
                if cell.get("status") == "running":
                    cell["status"] = "failed"
            try:
                manifest.mark("failed", f"{type(exc).__name__}: {exc}")
            except OSError:  # the disk is full: the manifest keeps its last state ('running')
                marked = False
        with suppress(AttributeError, TypeError):
            exc.run_hint = _failure_hint(exc, run_dir, marked)  # type: ignore[attr-defined]
        raise
    add_time()
    manifest.mark_complete()
    return run_dir


def _flushed(log: Log) -> Log:
    """``print`` with a flush (progress lines must reach a log file at once); other loggers
    (a sweep cell's log file) as they are."""
    if log is print:
        return lambda line: print(line, flush=True)
    return log


def _progress_summary(manifest: Manifest) -> str:
    cells = manifest.cells
    n_tasks = len(manifest.data.get("tasks") or manifest.categories)
    parts = []
    for key, cell in cells.items():
        done = cell.get("completed_step", -2) + 1
        if cell.get("status") == "complete":
            parts.append(f"{key} complete")
        else:
            parts.append(f"{key} {max(done, 0)} of {n_tasks} tasks")
    return ", ".join(parts) or "nothing completed yet"


def _failure_hint(exc: BaseException, run_dir: Path, marked: bool = True) -> str:
    state = ("is marked 'failed'" if marked else "could not be marked 'failed' (its manifest "
             "could not be written either; it still says 'running')")
    if isinstance(exc, DivergedError):
        return (f"{run_dir} {state} and keeps the steps it completed; resuming "
                "would repeat the same computation: start a new run with the change")
    return (f"{run_dir} {state} and keeps the steps it completed; once the cause is "
            f"fixed, continue it with:\n  {resume_command(run_dir)}")


def _drop_incomplete_rows(ctx: RunContext, completed: dict[str, int]) -> None:
    """Before resuming: drop the rows after each cell's resume point. ``completed``: each cell's
    last completed step before :func:`fall_back_to_intact_steps`; rows after it are of steps
    cut by the stop, rows between the resume point and it of completed steps trained again."""
    cells = ctx.manifest.cells
    cut, again = 0, 0

    def keep(row: dict[str, str]) -> bool:
        nonlocal cut, again
        key = ctx.cell_key(row["method"], int(row["seed"]))
        step = int(row["step"])
        if step <= cells.get(key, {}).get("completed_step", -2):
            return True
        if step > completed.get(key, -2):
            cut += 1
        else:
            again += 1
        return False

    dropped = ctx.records.rewrite(keep)
    parts = []
    if cut:
        parts.append(f"{cut} record(s) of steps that had not completed (cut by the stop)")
    if again:
        parts.append(f"{again} record(s) of completed steps that are trained again (their "
                     "checkpoint could not be used, see the warning above)")
    if dropped - cut - again > 0:
        parts.append(f"{dropped - cut - again} incomplete line(s)")
    if parts:
        ctx.log(f"resume: dropped {', '.join(parts)}")
