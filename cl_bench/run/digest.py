"""The digest of a run's configuration, and the keys in which two configurations differ.

A run records the SHA-256 of its configuration when it starts (``manifest.json``:
``config_digest``, with the configuration itself under ``config_at_start``). ``--resume``
recomputes it from ``config.yaml``: a configuration edited since the run began would make the
resumed steps follow another protocol than the completed ones, so the resume is refused and the
differing keys are named (docs/running.md, "Resuming"). The digest is taken over the parsed
YAML written as canonical JSON (sorted keys), so comments, spacing and key order do not count;
only values do. hashlib and json give it; no library offers a config diff of this shape, so
:func:`config_changes` is a short recursive walk.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: a key absent from one side
_MISSING = object()


def config_digest(config: dict[str, Any]) -> str:
    """``sha256:<hex>`` of ``json.dumps(config, sort_keys=True)`` (values only)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_changes(old: dict[str, Any], new: dict[str, Any],
                   prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every dotted key whose value differs, as ``key -> (old, new)``; a key present on one
    side only is a change from or to ``None`` (absent)."""
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new), key=str):
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        path = f"{prefix}{key}"
        if isinstance(before, dict) and isinstance(after, dict):
            changes.update(config_changes(before, after, f"{path}."))
        elif _plain(before) != _plain(after):
            changes[path] = (None if before is _MISSING else before,
                             None if after is _MISSING else after)
    return changes


def describe_changes(changes: dict[str, tuple[Any, Any]], limit: int = 8) -> str:
    """``train.epochs: 6 -> 1; eval.batch_size: 8 -> 4`` (at most ``limit`` keys, then a count)."""
    parts = [f"{key}: {_show(old)} -> {_show(new)}" for key, (old, new) in changes.items()]
    more = len(parts) - limit
    return "; ".join(parts[:limit]) + (f"; and {more} more key(s)" if more > 0 else "")


def _show(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, default=str)


def _plain(value: Any) -> Any:
    if value is _MISSING:
        return _MISSING
    return json.loads(json.dumps(value, default=str))
