"""Runs that differ only in their settings (a sweep over a strength, an epoch count, ...).

Two run folders with the same (method, strategy, seed, order) are one configuration reported
twice, unless their ``config.yaml`` files differ in a setting that can change that method's run.
Then they are *variants*: each one's strategy is labelled with the settings that tell them apart,
``ewc [ewc_lambda=10]`` (a path by the part that differs, ``naive [root=site_a/mvtec]``), so
that a sweep over ``strategy.ewc.ewc_lambda`` is reported as one row
per value instead of being refused as a duplicate. The registered strategy is the part before
`` [`` (:func:`base_strategy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from cl_bench.config import relevant_to_run

#: config keys that name or place a run rather than change it
IGNORED = ("experiment", "description", "seed", "seeds", "model.methods", "data.order",
           "data.order_seed", "data.order_name", "device", "num_threads", "eval.loggers",
           "eval.saved_maps_per_task", "performance")
#: sections keyed by detector: only the reported detector's entry can change its run
PER_METHOD = ("strategy.options", "train.per_method", "model.options")
VARIANT_OPEN = " ["


def base_strategy(label: str) -> str:
    """The registered strategy name of a strategy label (``ewc [ewc_lambda=10]`` -> ``ewc``)."""
    return label.split(VARIANT_OPEN, 1)[0]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def run_settings(config: dict[str, Any], method: str) -> dict[str, Any]:
    """The flattened settings of ``config`` that can change ``method``'s run."""
    settings = {}
    for key, value in _flatten(relevant_to_run(config)).items():
        if any(key == k or key.startswith(f"{k}.") for k in IGNORED):
            continue
        section = next((s for s in PER_METHOD if key.startswith(f"{s}.")), None)
        if section is not None:
            owner, _, rest = key[len(section) + 1:].partition(".")
            if owner != method:
                continue
            key = f"{section}.{method}.{rest}"
        settings[key] = value
    return settings


def _short(keys: Sequence[str]) -> dict[str, str]:
    """The last component of each key where that is unambiguous, else the whole key."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: name if last.count(name) == 1 else key for key, name in zip(keys, last,
                                                                             strict=True)}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and "/" in value


def path_tails(paths: Sequence[str]) -> dict[str, str]:
    """Each path shortened to what tells it apart from the others: the components after the
    leading ones they all share (``/data/site_a/mvtec`` and ``/data/site_b/mvtec`` ->
    ``site_a/mvtec`` and ``site_b/mvtec``); the whole path where that leaves nothing."""
    parts = {p: [c for c in p.rstrip("/").split("/") if c] for p in paths}
    shared = 0
    columns = list(parts.values())
    while columns and all(len(c) > shared + 1 for c in columns) and len(
            {c[shared] for c in columns}) == 1:
        shared += 1
    return {p: "/".join(c[shared:]) or p for p, c in parts.items()}


def label_variants(df: pd.DataFrame, configs: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame,
                                                                                  list[str]]:
    """``df`` with the strategy of variant runs labelled by the settings that differ, and a
    note per labelled group. ``configs`` maps a run folder to its ``config.yaml`` contents.

    Runs whose settings are all equal stay as they are (the duplicate check reports them).
    """
    labels: dict[tuple[str, str, str], str] = {}  # (run_dir, method, strategy) -> new label
    notes = []
    runs = df.drop_duplicates(["method", "strategy", "seed", "order", "run_dir"])
    for (method, strategy), group in runs.groupby(["method", "strategy"], sort=True):
        if not group.duplicated(["seed", "order"]).any():
            continue  # one run per (seed, order): nothing to tell apart
        dirs = sorted(set(group["run_dir"]))
        settings = {d: run_settings(configs.get(d, {}), method) for d in dirs}
        keys = sorted({k for s in settings.values() for k in s})
        differing = [k for k in keys if len({repr(s.get(k)) for s in settings.values()}) > 1]
        if not differing:
            continue
        names = _short(differing)
        shown: dict[str, dict[Any, str]] = {}  # a path is shown by its differing tail
        for k in differing:
            values = [settings[d].get(k) for d in dirs]
            if all(_is_path(v) for v in values):
                shown[k] = path_tails(values)  # type: ignore[arg-type]
        for d in dirs:
            values = {k: shown[k][settings[d][k]] if k in shown else _text(settings[d].get(k))
                      for k in differing}
            text = ", ".join(f"{names[k]}={values[k]}" for k in differing)
            labels[(d, method, strategy)] = f"{strategy}{VARIANT_OPEN}{text}]"
        notes.append(f"{method}/{strategy}: its runs differ in {', '.join(differing)}; each "
                     "setting is reported as its own row")
    if not labels:
        return df, notes
    new = [labels.get((d, m, s), s) for d, m, s in
           zip(df["run_dir"], df["method"], df["strategy"], strict=True)]
    return df.assign(strategy=new), notes
