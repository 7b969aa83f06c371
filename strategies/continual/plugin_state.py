"""Plugin state as plain tensors and containers (``torch.load(weights_only=True)`` reads it back).

Avalanche keeps parameter snapshots as ``ParamData`` objects, which ``weights_only`` loading
refuses; :func:`encode_state` turns them (and tuples, lists, dicts) into tagged plain containers
and :func:`decode_state` restores them on a device.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.utils import ParamData
from torch import Tensor


def encode_state(value: Any) -> Any:
    """``value`` with every ``ParamData``, tensor and container made ``weights_only``-safe."""
    if isinstance(value, ParamData):
        return {"__param__": value.name, "data": value.data.detach().cpu().clone()}
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {"__dict__": [(encode_state(k), encode_state(v)) for k, v in value.items()]}
    if isinstance(value, tuple | list):
        return {"__seq__": [encode_state(v) for v in value], "tuple": isinstance(value, tuple)}
    return value


def decode_state(value: Any, device: torch.device) -> Any:
    """The inverse of :func:`encode_state`, tensors moved to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        if "__param__" in value:
            data = value["data"].to(device)
            return ParamData(value["__param__"], shape=data.shape, init_tensor=data, device=device)
        if "__dict__" in value:
            return {decode_state(k, device): decode_state(v, device) for k, v in value["__dict__"]}
        if "__seq__" in value:
            items = [decode_state(v, device) for v in value["__seq__"]]
            return tuple(items) if value["tuple"] else items
    return value


def cpu_state_copy(state: dict[str, Tensor], dtype: torch.dtype | None = None
                   ) -> dict[str, Tensor]:
    """A CPU copy of a state dict (detached, never sharing memory with the model); floating
    tensors cast to ``dtype`` when given."""
    out = {}
    for key, value in state.items():
        value = value.detach().to("cpu", copy=True)
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[key] = value
    return out
