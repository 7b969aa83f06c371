"""Where a run's tasks come from: one dataset root, or several named sources in a stated order.

A :class:`Source` is a dataset root with its layout (``format``, see :mod:`.formats`), an
optional name and an optional list of its categories. One unnamed source is the classic run
(``data.root``): task names are the category names (``bottle``). Several named sources
(``data.sources``) make a sequence across datasets: task names keep their dataset,
``<source name>/<category>`` (``visa/candle``), in records, tables and plots. Task names are
never used in file names (checkpoints and saved maps are named by method, strategy, seed and
step), so the ``/`` creates no folder.

The canonical task order (``data.order: alphabetical``) is the sources in the order given, each
one's categories sorted; with a single source this is the plain alphabetical order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cl_bench.data.formats import AUTO, layout_for
from cl_bench.data.layout import suggest
from cl_bench.errors import DataError


@dataclass(frozen=True)
class Source:
    """One dataset root read in ``format``; ``name`` prefixes its task names when given."""

    root: Path
    format: str = AUTO
    name: str | None = None
    categories: tuple[str, ...] | None = None

    def task_name(self, category: str) -> str:
        return f"{self.name}/{category}" if self.name else category

    def __str__(self) -> str:
        return f"{self.name}={self.root}" if self.name else str(self.root)


class Sources(tuple):
    """Several :class:`Source` objects in task order (a tuple that prints readably)."""

    def __str__(self) -> str:
        return "; ".join(str(source) for source in self)


@dataclass(frozen=True)
class Task:
    """One task: its name in records, the source it comes from and the category folder."""

    name: str
    source: Source
    category: str


DataSpec = str | Path | Source | Sequence[Source]


def as_sources(spec: DataSpec, format: str = AUTO) -> list[Source]:
    """``spec`` as a list of sources (a plain root becomes one unnamed source in ``format``)."""
    if isinstance(spec, Source):
        return [spec]
    if isinstance(spec, (str, Path)):
        return [Source(Path(spec).expanduser(), format)]
    sources = list(spec)
    if not sources or not all(isinstance(s, Source) for s in sources):
        raise DataError(f"expected a dataset root or a list of Source objects, got {spec!r}")
    return sources


def list_tasks(spec: DataSpec, format: str = AUTO) -> list[Task]:
    """Every task of ``spec`` in the canonical order (sources as given, categories sorted)."""
    tasks: list[Task] = []
    for source in as_sources(spec, format):
        layout = layout_for(source.root, source.format)
        found = layout.list_categories(source.root)
        chosen = found
        if source.categories is not None:
            for category in source.categories:
                if category not in found:
                    label = f"source {source.name!r} ({source.root})" if source.name else ""
                    label = label or str(source.root)
                    raise DataError(
                        f"category {category!r} not found in {label}; categories found: "
                        f"{', '.join(found)}.{suggest(category, found)}"
                    )
            chosen = sorted(source.categories)
        tasks += [Task(source.task_name(c), source, c) for c in chosen]
    names = [task.name for task in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"tasks named twice: {', '.join(repeated)}; give each source its own name")
    return tasks


def list_categories(spec: DataSpec, format: str = AUTO) -> list[str]:
    """The task names of ``spec``: the sorted category folders of a root (any layout), or
    ``<source>/<category>`` for named sources, in the canonical order."""
    return [task.name for task in list_tasks(spec, format)]
