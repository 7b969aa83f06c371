"""The Avalanche task stream: one experience per task, aligned train and test streams.

A task is one category of one dataset source (:mod:`.sources`): with one root its name is the
category's, with several named sources ``<source>/<category>``.

Built with Avalanche 0.6's ``benchmark_from_datasets(train=[...], test=[...])``: list entry k
becomes experience k of each stream, so both lists follow the task order. Every dataset is an
``AvalancheDataset`` wrapping an :class:`MVTecDataset` without transform groups or task labels,
so a batch stays exactly ``(image, label, mask)``. Its per-item ``category`` and
``defect_type`` are ``DataAttribute``s kept out of the batch (``use_in_getitem=False``); they
survive Avalanche's ``subset``/``concat`` (replay buffers). Each experience also carries a plain
``category`` attribute (``"joint"`` for the joint training experience) and ``categories``.

Avalanche is imported on first use only: it takes seconds to import and ``cl-bench data``
commands do not need it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cl_bench.data.cache import ImageCache
from cl_bench.data.formats import AUTO
from cl_bench.data.layout import suggest
from cl_bench.data.mvtec import MVTecDataset
from cl_bench.data.orders import ALPHABETICAL, Order, resolve_order
from cl_bench.data.sources import DataSpec, as_sources, list_tasks
from cl_bench.data.splits import resolve_tasks, task_name
from cl_bench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario

JOINT = "joint"


@dataclass
class TaskBenchmark:
    """An Avalanche benchmark and the MVTec datasets behind it, in task order.

    ``categories[k]`` is the category of test experience k (and of train experience k unless
    ``joint``, where the single train experience holds all categories).
    """

    benchmark: CLScenario
    categories: list[str]
    train_datasets: list[MVTecDataset]
    test_datasets: list[MVTecDataset]
    image_size: int
    joint: bool = False
    #: the category columns of each training task, in task order (one column each when every
    #: task is one category; see :mod:`cl_bench.data.splits`)
    task_columns: list[list[int]] | None = None

    @property
    def groups(self) -> list[list[int]]:
        """The columns of each task (``[[0], [1], ...]`` for one category per task)."""
        return self.task_columns or [[j] for j in range(len(self.categories))]

    @property
    def task_names(self) -> list[str]:
        """The name of each training task: its category, or its categories joined by ``+``."""
        return [task_name([self.categories[j] for j in cols]) for cols in self.groups]

    @property
    def train_stream(self) -> Any:
        return self.benchmark.train_stream

    @property
    def test_stream(self) -> Any:
        return self.benchmark.test_stream

    @property
    def n_tasks(self) -> int:
        return len(self.categories)

    def category_of(self, experience: Any) -> str:
        """The category name of an experience of either stream (``"joint"`` for joint training)."""
        return experience.category


def _select(
    found: list[str], where: str, categories: Sequence[str] | None, order: Order
) -> list[str]:
    """The tasks to use: as given, else the explicit order's, else all found."""
    if categories is None:
        selected = list(order) if not isinstance(order, str) else found
    else:
        selected = list(categories)
    if not selected:
        raise ConfigError("no categories selected; name at least one, or pass None for all")
    for name in selected:
        if name not in found:
            raise DataError(
                f"category {name!r} not found under {where}; categories found: "
                f"{', '.join(found)}.{suggest(name, found)}"
            )
    return selected


def to_avalanche_dataset(datasets: Sequence[MVTecDataset]) -> Any:
    """One AvalancheDataset over ``datasets`` with per-item ``category``/``defect_type``."""
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    parts = []
    for dataset in datasets:
        attributes = [
            DataAttribute([dataset.task] * len(dataset), "category", use_in_getitem=False),
            DataAttribute(list(dataset.defect_types), "defect_type", use_in_getitem=False),
        ]
        parts.append(AvalancheDataset([dataset], data_attributes=attributes))
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.concat(part)
    return combined


def build_benchmark(
    root: DataSpec,
    categories: Sequence[str] | None = None,
    order: Order = ALPHABETICAL,
    seed: int = 0,
    image_size: int = 256,
    joint: bool = False,
    cache: ImageCache | None = None,
    format: str = AUTO,
    cumulative: bool = False,
    problems: list[str] | None = None,
    tasks: Any = None,
    allow_unused: bool = False,
) -> TaskBenchmark:
    """Avalanche benchmark over ``categories`` of ``root`` (all found when None), one task each.

    ``root``: a dataset root (read in ``format``, detected when "auto"), a :class:`Source`, or
    a sequence of named sources (tasks ``<source>/<category>``). ``categories`` and an explicit
    ``order`` use task names. ``order`` (:mod:`cl_bench.data.orders`): "alphabetical" (the
    canonical order: sources as given, each one's categories sorted), "reversed" (the sorted
    task names backwards), "random" (a permutation of the sorted task names, seeded by
    ``seed``) or an explicit list (which also selects the tasks when ``categories``
    is None). ``joint=True``: the train stream is a single experience holding every task's
    training images (the upper bound); the test stream keeps one experience per task.
    ``cumulative=True``: train experience i holds the training images of tasks 0..i, in task
    order (Avalanche's ``Cumulative`` strategy, here built into the stream); its ``category`` is
    task i, the task it adds. All datasets share ``image_size`` and ``cache``. ``problems``: a
    list that collects the folder scans' problems of every task (the files concerned are left
    out) instead of raising at the first task that has some.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    sources = as_sources(root, format)
    found = {task.name: task for task in list_tasks(sources)}
    where = ", ".join(str(source) for source in sources)
    groups: list[list[int]] | None = None
    if tasks is not None:
        if categories is not None:
            raise ConfigError("give data.tasks or data.categories, not both")
        layout = sources[0].format if len(sources) == 1 else None
        if layout == AUTO:
            from cl_bench.data.formats import detect_format

            layout = detect_format(sources[0].root)
        resolved = resolve_tasks(tasks, list(found), where, layout, allow_unused)
        names = [task_name(t) for t in resolved]
        by_name = dict(zip(names, resolved, strict=True))
        ordered_tasks = (names if order == ALPHABETICAL
                         else resolve_order(names, order, seed))
        ordered = [c for name in ordered_tasks for c in by_name[name]]
        bounds = np.cumsum([0, *(len(by_name[n]) for n in ordered_tasks)])
        groups = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
    else:
        selected = _select(list(found), where, categories, order)
        ordered = resolve_order(selected, order, seed)
        if order == ALPHABETICAL:  # canonical: sources in the order given (one source: sorted)
            chosen = set(selected)
            ordered = [name for name in found if name in chosen]

    def dataset(name: str, split: str) -> MVTecDataset:
        task = found[name]
        return MVTecDataset(task.source.root, task.category, split, image_size, cache,
                            format=task.source.format, task=name, problems=problems)

    train = [dataset(c, "train") for c in ordered]
    test = [dataset(c, "test") for c in ordered]
    if joint and cumulative:
        raise ValueError("build_benchmark: joint and cumulative exclude each other")
    columns = groups or [[j] for j in range(len(ordered))]
    # the categories of each training experience: all (joint), tasks 0..i (cumulative), task i
    if joint:
        parts = [[j for cols in columns for j in cols]]
    elif cumulative:
        parts = [[j for cols in columns[: i + 1] for j in cols] for i in range(len(columns))]
    else:
        parts = [list(cols) for cols in columns]
    train_parts = [to_avalanche_dataset([train[j] for j in part]) for part in parts]
    scenario = benchmark_from_datasets(train=train_parts,
                                       test=[to_avalanche_dataset([d]) for d in test])
    names = [task_name([ordered[j] for j in cols]) for cols in columns]
    for index, experience in enumerate(scenario.train_stream):
        experience.category = JOINT if joint else names[index]
        experience.categories = [ordered[j] for j in parts[index]]
    task_of = {j: k for k, cols in enumerate(columns) for j in cols}
    for index, experience in enumerate(scenario.test_stream):
        experience.category = ordered[index]
        experience.categories = [ordered[index]]
        experience.task_index = task_of[index]
    return TaskBenchmark(scenario, ordered, train, test, int(image_size), joint, groups)
