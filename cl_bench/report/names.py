"""Safe file names for report tables and figures.

A table's name holds its method and strategy label, and a variant label holds the settings that
tell runs apart (``ewc [ewc_lambda=10]``, a ``data.root`` path, a list of categories): spaces,
brackets, quotes and slashes that a file name must not hold. :func:`slug` keeps letters, digits,
``.``, ``_`` and ``-`` and turns every other run of characters into one ``_`` (``=`` into ``-``),
so a name never contains a path separator; :class:`Slugs` makes two labels that collapse to one
slug distinct. python-slugify would lowercase and drop dots (``lr-0.1`` -> ``lr-0-1``), which
merges values, so these few lines are written here.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: longer names end in a short hash of the whole label (file systems allow 255 bytes)
MAX_LENGTH = 120


def slug(label: str) -> str:
    """A file name for ``label``: ``R_image_auroc__stpm__ewc [ewc_lambda=10]`` ->
    ``R_image_auroc__stpm__ewc_ewc_lambda-10``."""
    text = _UNSAFE.sub("_", label.replace("=", "-")).strip("._-") or "unnamed"
    if len(text) > MAX_LENGTH:
        digest = hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]
        text = f"{text[:MAX_LENGTH - 9].rstrip('._-')}_{digest}"
    return text


class Slugs:
    """One distinct slug per label: a label that collapses onto another's slug gets ``_2``, ..."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        if label in self._given:
            return self._given[label]
        base = name = slug(label)
        taken = set(self._given.values())
        n = 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        self._given[label] = name
        return name
