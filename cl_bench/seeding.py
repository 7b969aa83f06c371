"""Seeding: the one function that seeds every generator, and the seed of each step.

A run seeds all generators at the start of every step ``t`` with
``step_seed(seed, t) = SeedSequence([seed, t + 1, salt])``, so that a resumed run (which starts
at a step boundary) draws exactly what the uninterrupted run drew, and step ``t`` does not depend
on how many random numbers earlier steps consumed.
"""

from __future__ import annotations

import numpy as np
import torch


def step_seed(seed: int, step: int, salt: int = 0) -> int:
    """The seed every generator gets at the start of ``step`` (-1 for the untrained model)."""
    return int(np.random.SeedSequence([seed, step + 1, salt]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA) with ``seed``.

    The one seeding function of cl-bench: runs call it at every step with :func:`step_seed`,
    ``cl-bench train-one`` with its ``--seed``."""
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
