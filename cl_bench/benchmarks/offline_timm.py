"""Building anomalib's models without a model hub: shared by the anomalib benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def timm_without_pretrained() -> Iterator[None]:
    """While anomalib builds a model, ``timm.create_model(..., pretrained=True)`` builds the
    architecture with random weights instead of downloading them."""
    import timm

    original = timm.create_model

    def create_model(*args, **kwargs):
        kwargs["pretrained"] = False
        return original(*args, **kwargs)

    timm.create_model = create_model
    try:
        yield
    finally:
        timm.create_model = original
