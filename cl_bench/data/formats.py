"""The dataset layouts cl-bench reads, by name, and their detection from a dataset root.

- ``mvtec``: MVTec AD (Bergmann et al., CVPR 2019 / IJCV 2021) and every set published in its
  layout (MPDD, MVTec LOCO and 3D-AD RGB as prepared under ../shared/data): :mod:`.layout`.
- ``visa``: VisA (Zou et al., ECCV 2022) as published, read through its 1cls split file:
  :mod:`.visa`.
- ``btad``: BTAD (Mishra et al., ISIE 2021) as published (``ok``/``ko`` folders): :mod:`.btad`.

``auto`` looks at the root: ``split_csv/`` or ``<category>/Data/Images`` means VisA, a
``<category>/train/ok`` or ``<category>/test/ko`` folder means BTAD, anything else is read as
MVTec (whose errors explain the layout). A root that looks like two layouts is an error asking
for ``data.format`` (or ``--format``), never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cl_bench.data import layout as mvtec_layout
from cl_bench.data.layout import Sample, check_root
from cl_bench.errors import ConfigError, DataError

AUTO = "auto"


class Layout(Protocol):
    """What a dataset layout offers: its categories, one category's samples, detection."""

    name: str

    def looks_like(self, root: Path) -> bool: ...

    def list_categories(self, root: Path) -> list[str]: ...

    def check_category(self, root: Path, category: str) -> None: ...

    def scan_split(self, root: Path, category: str, split: str,
                   problems: list[str] | None = None) -> list[Sample]: ...


class MVTecLayout:
    """The MVTec AD layout (also MPDD's): see :mod:`cl_bench.data.layout`."""

    name = "mvtec"

    def looks_like(self, root: Path) -> bool:
        return any(
            (p / s).is_dir() for p in _subfolders(root) for s in mvtec_layout.SPLITS
        )

    def list_categories(self, root: Path) -> list[str]:
        return mvtec_layout.list_categories(root)

    def check_category(self, root: Path, category: str) -> None:
        mvtec_layout.category_dir(root, category)

    def scan_split(self, root: Path, category: str, split: str,
                   problems: list[str] | None = None) -> list[Sample]:
        return mvtec_layout.scan_split(root, category, split, problems)


def _subfolders(root: Path) -> list[Path]:
    return [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def _registry() -> dict[str, Layout]:
    from cl_bench.data.btad import BTADLayout
    from cl_bench.data.visa import VisALayout

    return {"mvtec": MVTecLayout(), "visa": VisALayout(), "btad": BTADLayout()}


#: the layout names ``data.format`` and ``--format`` accept, besides ``auto``
FORMATS = ("mvtec", "visa", "btad")


def detect_format(root: str | Path) -> str:
    """The layout of ``root`` (see the module docstring); ``DataError`` when ambiguous."""
    path = check_root(root)
    layouts = _registry()
    visa, btad, mvtec = (layouts[name].looks_like(path) for name in ("visa", "btad", "mvtec"))
    if visa and (btad or mvtec):
        both = "visa, btad" if btad else "visa, mvtec"
        raise DataError(
            f"{path} looks like several dataset layouts ({both}); name the one to read with "
            f"data.format (or `cl-bench data info --format`): one of {', '.join(FORMATS)}"
        )
    if visa:
        return "visa"
    return "btad" if btad else "mvtec"


def layout_for(root: str | Path, format: str = AUTO) -> Layout:
    """The :class:`Layout` named ``format``, or detected from ``root`` when ``auto``."""
    if format != AUTO and format not in FORMATS:
        raise ConfigError(
            f"format={format!r}: unknown dataset layout; choose {AUTO} or one of "
            f"{', '.join(FORMATS)}"
        )
    name = detect_format(root) if format == AUTO else format
    if format != AUTO:
        check_misfit(check_root(root), format)
    return _registry()[name]


#: what each layout looks like, for the hint of :func:`check_misfit`
_LOOKS = {"mvtec": "<category>/train and <category>/test folders",
          "visa": "split_csv/ or <category>/Data/Images",
          "btad": "<product>/train/ok or <product>/test/ko folders"}


def check_misfit(root: Path, format: str) -> None:
    """``DataError`` when ``format`` was named but ``root`` does not look like it and looks
    like exactly one other layout (a VisA root read with ``format: mvtec``): the error names
    the layout to use. VisA's own errors already explain its split file, so a root read as
    ``visa`` is left to them."""
    if format == "visa":
        return
    layouts = _registry()
    if layouts[format].looks_like(root):
        return
    others = [name for name in FORMATS if name != format and layouts[name].looks_like(root)]
    if len(others) == 1:
        other = others[0]
        raise DataError(
            f"{root} was read as the {format} layout (data.format / --format {format}), but it "
            f"holds {_LOOKS[other]}, the {other} layout; set data.format: {other} (or "
            f"`cl-bench data info --format {other}`), or auto to detect it"
        )
