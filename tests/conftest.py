"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """Two-core CI machine: keep torch from oversubscribing it."""
    torch.set_num_threads(2)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the project root; the test is skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real image sets not found at {SHARED_DATA}; they sit beside a dev checkout")
    return SHARED_DATA
