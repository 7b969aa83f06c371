"""Atomic writes of text and JSON (see :func:`strategies.training.atomic.atomic_write`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from strategies.training.atomic import atomic_write


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


__all__ = ["atomic_write", "atomic_write_json", "atomic_write_text"]
