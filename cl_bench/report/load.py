"""Read what runs wrote: ``records.csv``, ``manifest.json``, ``config.yaml`` and ``maps/*.npz``.

A path is either a run folder (it holds ``records.csv``) or any folder above run folders, which
is searched recursively. Every run loads as it is, whatever its status (``running``, ``failed``,
``interrupted``, ``complete``, or ``unknown`` without a manifest); the report
(:func:`cl_bench.report.build.compute`) keeps complete runs only and lists the others.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cl_bench.errors import DataError
from cl_bench.records import COLUMN_TYPES, COLUMNS
from cl_bench.run.layout import OUTPUT_DIRS, RECORDS, RunLayout, parse_map_name

#: the manifest status of a finished run; any other status is an incomplete run
COMPLETE = "complete"
#: folders never searched for runs (a run's own outputs)
_SKIPPED_DIRS = {*OUTPUT_DIRS, "__pycache__", ".git"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass
class RunInfo:
    """One run folder: its manifest, resolved configuration and anomaly-map files."""

    path: Path
    run_id: str
    manifest: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    map_files: list[Path] = field(default_factory=list)
    n_records: int = 0

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def pro_fpr_limit(self) -> float | None:
        """``eval.pro_fpr_limit`` of the run's config.yaml; None where the key is absent."""
        section = self.config.get("eval")
        value = section.get("pro_fpr_limit") if isinstance(section, dict) else None
        if value is None:
            return None
        try:
            limit = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{self.path / 'config.yaml'}: eval.pro_fpr_limit = {value!r} is "
                            "not a number in (0, 1]") from None
        if not 0 < limit <= 1:
            raise DataError(f"{self.path / 'config.yaml'}: eval.pro_fpr_limit = {value!r} is "
                            "not in (0, 1]")
        return limit

    @property
    def experiment(self) -> str:
        return str(self.manifest.get("experiment") or self.config.get("experiment")
                   or self.path.parent.name)


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Every run folder at or below ``paths`` (a run folder is one that holds ``records.csv``)."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder; give a run folder (with "
                            "records.csv) or a folder above run folders")
        if path.is_file():
            if path.name != RECORDS:
                raise DataError(f"{path}: expected a run folder or its records.csv")
            path = path.parent
        candidates = [path] if RunLayout(path).records.is_file() else _search(path)
        for run_dir in candidates:
            resolved = run_dir.resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(run_dir)
    if not found:
        listed = ", ".join(str(p) for p in paths)
        raise DataError(f"no records.csv found at or below {listed}; run `cl-bench run` first "
                        "or point at results/<experiment>/<run_id>")
    return found


def _search(root: Path) -> list[Path]:
    runs = []
    for csv_path in sorted(root.rglob(RECORDS)):
        if not _SKIPPED_DIRS.intersection(csv_path.relative_to(root).parts[:-1]):
            runs.append(csv_path.parent)
    return runs


def read_records(csv_path: Path) -> pd.DataFrame:
    """One ``records.csv`` as a typed DataFrame; a clear :class:`DataError` when malformed."""
    try:
        text = csv_path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            # a run killed while appending leaves a cut last row: it is not a measurement
            text = text[: text.rfind("\n") + 1]
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{csv_path}: empty file (not even the header); the run wrote "
                        "nothing yet or the file was truncated") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{csv_path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected "
                        f"{', '.join(COLUMNS)}")
    df = raw[COLUMNS].copy()
    for column, kind in COLUMN_TYPES.items():  # the types Record declares
        df[column] = _PARSERS[kind](df[column], csv_path, column)
    return df


def _bad_row(csv_path: Path, column: str, series: pd.Series, bad: pd.Series, fix: str) -> DataError:
    index = int(np.flatnonzero(bad.to_numpy())[0])
    return DataError(f"{csv_path}: line {index + 2}, column {column!r}: {series.iloc[index]!r} "
                     f"is not {fix}")


def _to_int(series: pd.Series, csv_path: Path, column: str) -> pd.Series:
    stripped = series.str.strip()
    bad = ~stripped.str.fullmatch(r"-?\d+")
    if bad.any():
        raise _bad_row(csv_path, column, series, bad, "an integer")
    return stripped.astype(int)


def _to_float(series: pd.Series, csv_path: Path, column: str) -> pd.Series:
    def parse(text: str) -> float:
        text = text.strip()
        if text == "":
            return float("nan")
        try:
            return float(text)
        except ValueError:
            return None  # type: ignore[return-value]

    values = series.map(parse)
    bad = values.isna() & ~series.str.strip().str.lower().isin(["", "nan"])
    if bad.any():
        raise _bad_row(csv_path, column, series, bad, "a number (or nan)")
    return values.astype(float)


def _to_bool(series: pd.Series, csv_path: Path, column: str) -> pd.Series:
    lowered = series.str.strip().str.lower()
    bad = ~lowered.isin(_TRUE | _FALSE)
    if bad.any():
        raise _bad_row(csv_path, column, series, bad, "True or False")
    return lowered.isin(_TRUE).astype(bool)


def _to_str(series: pd.Series, csv_path: Path, column: str) -> pd.Series:
    return series.astype(object)


#: how a column of each type declared by :class:`cl_bench.records.Record` is parsed
_PARSERS = {int: _to_int, float: _to_float, bool: _to_bool, str: _to_str}


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """``manifest.json`` of a run, ``{}`` when the run has none (yet); DataError when corrupt."""
    path = RunLayout(run_dir).manifest
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); restore it or delete it") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
    return manifest


def read_config(run_dir: Path) -> dict[str, Any]:
    """``config.yaml`` of a run, ``{}`` when absent; DataError when corrupt."""
    path = RunLayout(run_dir).config
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: not valid YAML ({exc})") from None
    return config if isinstance(config, dict) else {}


def read_run(run_dir: Path) -> tuple[pd.DataFrame, RunInfo]:
    """The records and facts of one run folder."""
    layout = RunLayout(run_dir)
    records = read_records(layout.records)
    manifest = read_manifest(run_dir)
    run_ids = sorted(set(records["run_id"]))
    run_id = str(manifest.get("run_id") or (run_ids[0] if run_ids else run_dir.name))
    if len(run_ids) > 1:
        raise DataError(f"{layout.records}: holds several run_ids ({', '.join(run_ids)});"
                        " one run folder must hold one run")
    records = _check_duplicates(records, layout.records)
    info = RunInfo(path=run_dir, run_id=run_id, manifest=manifest, config=read_config(run_dir),
                   map_files=layout.map_files(), n_records=len(records))
    limit = info.pro_fpr_limit
    records = records.assign(run_dir=str(run_dir), status=info.status,
                             pro_fpr_limit=np.nan if limit is None else limit)
    return records, info


def _check_duplicates(records: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """Rows measured twice in one ``records.csv`` (two processes wrote the run at once, before
    run folders were locked): identical values are kept once with a warning; differing values
    are refused, since nothing tells which one is right."""
    key = [c for c in COLUMNS if c != "value"]
    repeated = records.duplicated(subset=key, keep=False)
    if not repeated.any():
        return records
    values = records[repeated].groupby(key, dropna=False)["value"].agg(
        lambda v: v.nunique(dropna=False))
    if (values > 1).any():
        first = values[values > 1].index[0]
        where = ", ".join(f"{k}={v}" for k, v in zip(key, first, strict=True)
                          if k in ("method", "seed", "step", "eval_task", "metric"))
        raise DataError(
            f"{csv_path}: {int((values > 1).sum())} measurement(s) appear twice with different "
            f"values (first: {where}); two processes wrote this run at once. Rerun it, or "
            "delete the rows of the steps written twice and resume the run")
    dropped = int(records.duplicated(subset=key).sum())
    warnings.warn(f"{csv_path}: {dropped} duplicate row(s) (the same measurement written twice, "
                  "e.g. by two processes resuming the run at once) counted once", stacklevel=3)
    return records.drop_duplicates(subset=key).reset_index(drop=True)


def load_runs_with_info(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, list[RunInfo]]:
    """All records below ``paths`` in one tidy DataFrame, and the facts of each run folder.

    Two run folders may hold the same (method, strategy, seed, order), e.g. a failed run and its
    rerun; both load. The report keeps complete runs only and refuses duplicates among them.
    """
    paths = list(paths)
    frames, infos = [], []
    for run_dir in find_run_dirs(paths):
        records, info = read_run(run_dir)
        frames.append(records)
        infos.append(info)
    columns = [*COLUMNS, "run_dir", "status", "pro_fpr_limit"]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if df.empty:
        raise DataError(f"the records.csv files below {', '.join(map(str, paths))} hold no rows "
                        "yet; wait until the run has evaluated the untrained model")
    df = df.drop_duplicates(subset=[c for c in COLUMNS if c != "value"], keep="last")
    return df.reset_index(drop=True), infos


def load_runs(paths: Iterable[str | Path] | str | Path) -> pd.DataFrame:
    """The records of every run at or below ``paths`` as one tidy pandas DataFrame.

    Columns: those of ``records.csv`` (typed: seed, step, eval_index int; value float; task_aware
    bool) plus ``run_dir``, ``status`` (from the manifest: running, complete, failed,
    interrupted or unknown) and ``pro_fpr_limit`` (``eval.pro_fpr_limit`` of config.yaml, NaN
    where absent). ``df.attrs["runs"]`` maps each run_id to its :class:`RunInfo` (manifest, config,
    map files).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    df, infos = load_runs_with_info(paths)
    # set last: pandas deep-copies attrs into every derived frame
    df.attrs["runs"] = {info.run_id: info for info in infos}
    return df


@dataclass
class MapSet:
    """The anomaly maps one (method, strategy, seed) saved after its final task."""

    method: str
    strategy: str
    seed: int
    images: np.ndarray  # (N, 3, H, W) uint8
    masks: np.ndarray  # (N, H, W)
    maps: np.ndarray  # (N, H, W) float32
    tasks: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,)
    path: Path


def read_map_file(path: Path) -> MapSet:
    """One ``maps/<method>__<strategy>__seed<seed>.npz``; DataError naming the missing array."""
    name = parse_map_name(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as .npz ({exc})") from None
    required = ("images", "masks", "maps", "tasks", "labels")
    missing = [name for name in required if name not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected {required}")
    n = len(arrays["maps"])
    if any(len(arrays[name]) != n for name in required) or arrays["maps"].ndim != 3:
        shapes = {name: arrays[name].shape for name in required}
        raise DataError(f"{path}: arrays disagree in length or maps is not (N,H,W): {shapes}")
    return MapSet(method=name.method, strategy=name.strategy, seed=name.seed,
                  images=arrays["images"], masks=arrays["masks"], maps=arrays["maps"],
                  tasks=arrays["tasks"].astype(str), labels=arrays["labels"], path=path)
