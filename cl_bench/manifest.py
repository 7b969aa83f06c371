"""``manifest.json``: what a run was made with and how it went.

Versions, git commit, device, seeds, per-step durations, peak memory, fallbacks that were taken,
and the status: ``running`` (a process is writing it, or one was killed without warning),
``complete``, ``failed`` (with ``error``: what went wrong) or ``interrupted`` (stopped by Ctrl-C
or SIGTERM; resumable). Rewritten atomically after every step.

The document's keys are typed by :class:`ManifestData` (and :class:`CellEntry`,
:class:`StepEntry` for its ``cells`` and ``steps``): typed dictionaries, so the JSON on disk is
exactly what it was and runs written by earlier versions load unchanged. Change it through
:class:`Manifest`'s methods (:meth:`Manifest.start_cell`, :meth:`Manifest.add_step`,
:meth:`Manifest.drop_steps_after`, :meth:`Manifest.warn`, :meth:`Manifest.mark`).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict, cast

from cl_bench.io import atomic_write_json

PACKAGES = (
    "cl-bench", "torch", "torchvision", "avalanche-lib", "numpy", "scikit-learn", "scipy",
    "pandas", "matplotlib", "pillow", "pydantic", "efficientnet-lite-pytorch",
)

#: the values of ``status``
STATUSES = ("running", "complete", "failed", "interrupted")


class CellEntry(TypedDict, total=False):
    """``cells["<method>/seed<s>"]``: how far one method x seed got."""

    status: str  # running | complete | failed (the run failed while this cell ran)
    completed_step: int  # -2: nothing yet; -1: the untrained model evaluated; i: task i done
    train: dict[str, Any]  # the resolved train settings of the method
    strategy_options: dict[str, Any]  # the strategy's options for the method (per_method resolved)
    trainable_parameters: int
    learns_without_gradients: bool


class StepEntry(TypedDict, total=False):
    """One entry of ``steps``: a finished step of one cell, its durations and memory."""

    method: str
    seed: int
    step: int
    train_task: str
    train_s: float
    eval_s: float
    peak_rss_mb: float
    peak_cuda_mb: float
    teacher_cache: dict[str, float]
    state_mb: float  # the detector's state after the step (memory_stats)
    memory_bank_patches: int  # PatchCore
    memory_bank_mb: float  # PatchCore
    routing_memory_mb_total: float  # routing: all experts and keys held
    routing_memory_mb_per_task: float  # routing: that total over the experts
    routing_expert_memory_mb: list[float]  # routing: each task's own expert and key


class ManifestData(TypedDict, total=False):
    """The keys of ``manifest.json``."""

    status: str
    error: str
    earlier_errors: list[str]
    interrupted_by: str
    created: str
    updated: str
    finished: str
    resumed: list[str]
    command: list[str]
    versions: dict[str, str | None]
    machine: dict[str, Any]
    git: dict[str, Any] | None
    host: str
    run_id: str
    experiment: str
    device: str
    device_name: str
    torch_threads: int
    data_root: str
    categories: list[str]
    order: str
    seeds: list[int]
    methods: list[str]
    #: every detector registered when the run (re)started, in registration order, as figures
    #: show it: {"name", "label", "color", "source"} (strategies.detectors.detector_looks)
    detectors: list[dict[str, str]]
    strategy: str
    warnings: list[str]
    cells: dict[str, CellEntry]
    steps: list[StepEntry]
    total_s: float
    peak_memory_mb: float
    config_digest: str  # sha256 of config.yaml's values when the run began (run/digest.py)
    config_at_start: dict[str, Any]  # config.yaml's values when the run began
    config_changes: list[dict[str, Any]]  # changes accepted with --allow-config-change


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    """The processor and the kernels torch picks on it: floating-point results of the same seed
    can differ in the last digits between CPUs (e.g. AVX-512 against AVX2 kernels), so a
    reader comparing two runs needs to know whether they ran on the same kind of machine. torch
    is asked only if it is already loaded (a run has loaded it before its manifest is made)."""
    model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"processor": model, "machine": platform.machine(),
                            "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def git_commit(path: Path) -> dict[str, Any] | None:
    """The commit of the checkout ``path`` lies in, and whether it had local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path, capture_output=True, text=True, timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Manifest:
    """A JSON document kept in sync with ``manifest.json`` on every :meth:`save`."""

    def __init__(self, path: Path, data: ManifestData | dict[str, Any]) -> None:
        self.path = path
        self.data: ManifestData = cast(ManifestData, data)

    @classmethod
    def create(cls, path: Path, **fields: Any) -> Manifest:
        data: ManifestData = {
            "status": "running",
            "created": utc_now(),
            "updated": utc_now(),
            "command": sys.argv,
            "versions": package_versions(),
            "git": git_commit(Path(__file__).resolve().parent),
            "host": platform.node(),
            "machine": machine(),
            "warnings": [],
            "cells": {},
            "steps": [],
        }
        data.update(fields)  # type: ignore[typeddict-item]
        manifest = cls(path, data)
        manifest.save()
        return manifest

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(path, json.loads(path.read_text()))

    @property
    def status(self) -> str:
        return self.data.get("status", "unknown")

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")

    @property
    def cells(self) -> dict[str, CellEntry]:
        """Every cell started so far, by key ``<method>/seed<s>`` (empty before the first)."""
        return self.data.get("cells", {})

    @property
    def categories(self) -> list[str]:
        return list(self.data.get("categories") or [])

    def describe_run(self, **fields: Any) -> None:
        """Set the run-level facts learnt once the run is prepared (device, data, order, ...)."""
        self.data.update(fields)  # type: ignore[typeddict-item]

    def add_time(self, seconds: float) -> None:
        """Add ``seconds`` of wall time to ``total_s`` (summed over the run's sessions)."""
        self.data["total_s"] = self.data.get("total_s", 0.0) + seconds

    def note_resumed(self) -> None:
        """A new session resumes the run: keep the last error among ``earlier_errors``, forget
        what interrupted it and add the time to ``resumed``."""
        if self.data.get("error"):
            self.data.setdefault("earlier_errors", []).append(self.data["error"])
        self.data.pop("interrupted_by", None)
        self.data.setdefault("resumed", []).append(utc_now())

    def mark_interrupted(self, signal_name: str) -> None:
        """Status ``interrupted``, with the signal that stopped the run (saved)."""
        self.data["interrupted_by"] = signal_name
        self.mark("interrupted")

    def mark_complete(self) -> None:
        """Status ``complete`` with the time it finished (saved)."""
        self.data["finished"] = utc_now()
        self.mark("complete")

    def start_cell(self, key: str) -> CellEntry:
        """The entry of cell ``key`` (``<method>/seed<s>``); made (running, no step) when new."""
        return self.data.setdefault("cells", {}).setdefault(
            key, {"completed_step": -2, "status": "running"})

    def cell(self, key: str) -> CellEntry:
        """The entry of cell ``key``; KeyError when the run never started it."""
        return self.data["cells"][key]

    def add_step(self, entry: StepEntry, save: bool = True) -> None:
        """Append a finished step (and save)."""
        self.data.setdefault("steps", []).append(entry)
        if save:
            self.save()

    def drop_steps_after(self, method: str, seed: int, step: int) -> None:
        """Forget the steps of ``method`` x ``seed`` after ``step`` (they are trained again)."""
        self.data["steps"] = [
            s for s in self.data.get("steps", [])
            if not (s.get("method") == method and s.get("seed") == seed
                    and s.get("step", -2) > step)]

    def warn(self, message: str, save: bool = True) -> None:
        """Record a fallback or other warning (also printed by the caller)."""
        if message not in self.data["warnings"]:
            self.data["warnings"].append(message)
        if save:
            self.save()

    def mark(self, status: str, error: str | None = None) -> None:
        """Set and save the status (:data:`STATUSES`); ``error`` is kept for ``failed``."""
        if status not in STATUSES:
            raise ValueError(f"unknown manifest status {status!r}; one of {STATUSES}")
        self.data["status"] = status
        if error is None:
            self.data.pop("error", None)
        else:
            self.data["error"] = error
        self.save()

    def save(self) -> None:
        self.data["updated"] = utc_now()
        self.data["peak_memory_mb"] = max(self.data.get("peak_memory_mb", 0.0), peak_rss_mb())
        atomic_write_json(self.path, self.data)
