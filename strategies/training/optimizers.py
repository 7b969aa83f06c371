"""The students' optimizer, built in one place for runs, ``train-one`` and the benchmarks.

``fused=True`` asks torch for its fused implementation (one kernel for the whole parameter
list, on the CPU since torch 2.4 and on CUDA): the same update rule as the default ``foreach``
implementation, with the arithmetic in another order, so results differ only by float rounding
and a run stays reproducible from its seed. It makes Adam's step faster; the measurement is in
docs/performance.md, "Optimizer step".
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from strategies.errors import OptimizerError

OPTIMIZERS = ("adam", "adamw", "sgd")


def build_optimizer(params: Iterable[nn.Parameter], name: str = "adam", lr: float = 0.005,
                    betas: tuple[float, float] = (0.5, 0.999), momentum: float = 0.9,
                    weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Optimizer:
    """``name`` in ("adam", "adamw", "sgd") over ``params`` (betas for Adam/AdamW, momentum
    for SGD); ``fused`` selects torch's fused kernels (an error where they are unavailable)."""
    params = list(params)
    if name not in OPTIMIZERS:
        raise OptimizerError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    hyper = {"momentum": momentum} if name == "sgd" else {"betas": betas}
    extra = {"fused": True} if fused else {}
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, **hyper, **extra)
    except (RuntimeError, TypeError) as exc:
        if not fused:
            raise
        devices = sorted({str(p.device) for p in params})
        raise OptimizerError(
            f"torch {torch.__version__} has no fused {name} for parameters on "
            f"{', '.join(devices)} ({exc}); set train.optimizer.fused: false "
            f"(or install torch >= 2.4)") from exc
