"""Detector checkpoints: the students and the weighting/fusion state, never the teacher.

A checkpoint is one ``torch.save`` file holding
``{"format": "cl-bench-detector", "version": 1, "detector": name, "state_dict": ...,
"extra": {...}}``. ``detector.state_dict()`` already excludes the hidden teacher and includes the
hybrid's weighting parameters/buffers and fusion statistics. Writes are atomic (a temporary file
in the same folder, fsynced, then ``os.replace``), so a crash never leaves a half-written
checkpoint under the final name. Reads use ``torch.load(weights_only=True)`` (no arbitrary
pickles); a truncated, foreign or mismatching file raises :class:`CheckpointError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from strategies.errors import CheckpointError
from strategies.training.atomic import atomic_write

FORMAT = "cl-bench-detector"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(value: Any, where: str) -> None:
    """``extra`` must load under ``weights_only=True``: plain containers, numbers, tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise CheckpointError(f"checkpoint extra key {where}[{key!r}] must be str or int")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN):
        raise CheckpointError(
            f"checkpoint extra {where} is a {type(value).__name__}; store only str, int, "
            f"float, bool, None, tensors and lists/dicts of them")


def save_detector(detector: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Atomically write ``detector``'s students (its ``state_dict``) and ``extra`` to ``path``."""
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "detector": getattr(detector, "name", type(detector).__name__),
        "state_dict": {k: v.detach().cpu() for k, v in detector.state_dict().items()},
        "extra": extra,
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's payload, checked to be a cl-bench detector checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # not torch's message: it advises weights_only=False, unsafe for a file of unknown origin
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); it is truncated or not "
            f"a cl-bench detector checkpoint. cl-bench run --resume goes back to the last intact "
            f"checkpoint by itself and trains the later steps again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a cl-bench detector checkpoint (no format={FORMAT!r} marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {payload.get('version')!r}; this cl-bench reads "
            f"version {VERSION}")
    return payload


def load_detector_state(detector: nn.Module, path: str | Path) -> dict:
    """Load the students/weighting state saved by :func:`save_detector`; return its ``extra``."""
    payload = read_checkpoint(path)
    name = getattr(detector, "name", type(detector).__name__)
    if payload.get("detector") != name:
        raise CheckpointError(
            f"checkpoint {path} holds a {payload.get('detector')!r} detector, not {name!r}")
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} has no state_dict")
    try:
        detector.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise CheckpointError(
            f"checkpoint {path} does not fit this {name!r} detector (another backbone or other "
            f"options?): {' '.join(first[:3])[:500]}"
        ) from None
    extra = payload.get("extra", {})
    return extra if isinstance(extra, dict) else {}
