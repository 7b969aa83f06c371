"""Tasks made of several categories: ``data.tasks`` and the literature's named X-Y splits.

A *task* is a group of categories trained as one unified model (the X-Y multi-class
incremental protocol of IUF, Tang et al., ECCV 2024, and CDAD "One-for-More", Li et al.,
CVPR 2025): a base task of X categories, then Y new categories per step. ``data.tasks`` is
either an explicit list of lists (``[[bottle, cable], [capsule]]``) or the name of a split in
:data:`NAMED_SPLITS`.

The named splits follow the category files of CDAD's released code (the repository copy
``jasjasmine-lab/tdvs``, files ``data/MVTec-AD/<setting>/train_<k>.json`` and
``data/VisA/<setting>/<k>.csv``: the ``clsname``/``object`` of each task's training images;
settings as in its README, "4. Train"; the official repository ``FuNz-0/One-for-More`` holds
the same files). IUF's repository (``jqtangust/IUF``) names the same protocols but keeps its base
tasks' category lists in the dataset download, not in the repository; the configs of its later
steps name single categories in the same sorted order. In both datasets the tasks take the
categories in sorted order (docs/datasets.md, "Multi-category tasks").

Checks, all before anything trains: an empty task, a category in two tasks, an unknown split
name (:func:`check_tasks`, configuration time); a category the data lacks, a named split used
with the other dataset and categories of the data left out without ``data.allow_unused_categories:
true`` (:func:`resolve_tasks`, when the data is read).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cl_bench.errors import ConfigError, DataError

MVTEC = "mvtec"
VISA = "visa"
#: the sorted categories of each dataset
DATASET_CATEGORIES = {
    MVTEC: ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
            "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper"),
    VISA: ("candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
           "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum"),
}
DATASET_NAMES = {MVTEC: "MVTec AD", VISA: "VisA"}


@dataclass(frozen=True)
class NamedSplit:
    """A published X-Y split: its dataset, task sizes and where the category lists come from."""

    name: str
    dataset: str
    sizes: tuple[int, ...]
    setting: str  # the protocol's name in the papers
    source: str  # the file(s) holding the category lists

    @property
    def tasks(self) -> list[list[str]]:
        """The tasks: consecutive runs of the dataset's sorted categories, ``sizes`` long."""
        names = DATASET_CATEGORIES[self.dataset]
        bounds = np.cumsum((0, *self.sizes))
        return [list(names[a:b]) for a, b in itertools.pairwise(bounds)]


_CDAD = "jasjasmine-lab/tdvs (CDAD's released code)"
NAMED_SPLITS: dict[str, NamedSplit] = {split.name: split for split in (
    NamedSplit("mvtec_14_1", MVTEC, (14, 1), "14 - 1 with 1 step",
               f"{_CDAD}: data/MVTec-AD/1/train_1.json, train_2.json"),
    NamedSplit("mvtec_10_5", MVTEC, (10, 5), "10 - 5 with 1 step",
               f"{_CDAD}: data/MVTec-AD/2/train_1.json, train_2.json"),
    NamedSplit("mvtec_3x5", MVTEC, (3, 3, 3, 3, 3), "3 x 5 with 5 steps (3 - 3 with 4 steps)",
               f"{_CDAD}: data/MVTec-AD/3/train_1.json .. train_5.json"),
    NamedSplit("mvtec_10_1x5", MVTEC, (10, 1, 1, 1, 1, 1), "10 - 1 x 5 with 5 steps",
               f"{_CDAD}: data/MVTec-AD/4/train_1.json .. train_6.json"),
    NamedSplit("visa_11_1", VISA, (11, 1), "11 - 1 with 1 step",
               f"{_CDAD}: data/VisA/1/1.csv, 2.csv (split column 'train')"),
    NamedSplit("visa_8_4", VISA, (8, 4), "8 - 4 with 1 step",
               f"{_CDAD}: data/VisA/2/1.csv, 2.csv (split column 'train')"),
    NamedSplit("visa_8_1x4", VISA, (8, 1, 1, 1, 1), "8 - 1 x 4 with 4 steps",
               f"{_CDAD}: data/VisA/3/1.csv .. 5.csv (split column 'train')"),
)}
TASK_SEPARATOR = "+"


def task_name(categories: Sequence[str]) -> str:
    """The name of a task in records (``train_task``): its categories joined by ``+``."""
    return TASK_SEPARATOR.join(categories)


def split_name(tasks: Any) -> str | None:
    """The named split of a ``data.tasks`` value (None for an explicit list or no split)."""
    return tasks if isinstance(tasks, str) else None


def check_tasks(tasks: Any, where: str = "data.tasks") -> list[list[str]]:
    """``data.tasks`` as a list of lists, checked without the data: a known split name, or
    non-empty tasks of category names, each category in one task only."""
    if isinstance(tasks, str):
        if tasks not in NAMED_SPLITS:
            raise ConfigError(f"{where}: unknown split {tasks!r}; named splits: "
                              f"{', '.join(NAMED_SPLITS)}, or give a list of lists of "
                              "categories, e.g. [[bottle, cable], [capsule]]")
        return NAMED_SPLITS[tasks].tasks
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise ConfigError(f"{where}: give a split name or a non-empty list of tasks, each a list "
                          f"of categories, e.g. [[bottle, cable], [capsule]] (got {tasks!r})")
    resolved: list[list[str]] = []
    owner: dict[str, int] = {}
    for k, task in enumerate(tasks):
        if not isinstance(task, (list, tuple)) or not all(isinstance(c, str) for c in task):
            raise ConfigError(f"{where}[{k}]: a task is a list of category names, got {task!r}; "
                              "write [[bottle], [cable]] for one category per task or "
                              "[[bottle, cable]] for one task of both")
        if not task:
            raise ConfigError(f"{where}[{k}]: task {k} is empty; give it at least one category "
                              "or remove it")
        for category in task:
            if category in owner:
                first = owner[category]
                where_twice = (f"task {first} twice" if first == k
                               else f"tasks {first} and {k}")
                raise ConfigError(f"{where}: category {category!r} is in {where_twice}; a "
                                  "category belongs to one task only")
            owner[category] = k
        resolved.append(list(task))
    return resolved


def resolve_tasks(tasks: Any, found: Sequence[str], where: str, data_format: str | None = None,
                  allow_unused: bool = False) -> list[list[str]]:
    """The tasks of ``data.tasks`` checked against the categories ``found`` in the data.

    ``where`` names the data (its root) in the messages; ``data_format`` is the layout read
    (``mvtec``, ``visa``, ...), used to tell a split of the other dataset apart from a missing
    category. Categories of the data in no task are an error unless ``allow_unused``.
    """
    resolved = check_tasks(tasks)
    named = NAMED_SPLITS.get(tasks) if isinstance(tasks, str) else None
    wanted = [c for task in resolved for c in task]
    missing = [c for c in wanted if c not in found]
    if named is not None:
        other = VISA if named.dataset == MVTEC else MVTEC
        wrong_layout = data_format in (MVTEC, VISA) and data_format != named.dataset
        looks_other = bool(found) and set(found) <= set(DATASET_CATEGORIES[other])
        if wrong_layout or (missing and (looks_other or len(missing) == len(wanted))):
            raise DataError(
                f"data.tasks: split {named.name!r} is a {DATASET_NAMES[named.dataset]} split, "
                f"but {where} holds {', '.join(found) or 'no categories'}"
                + (f" (layout {data_format})" if data_format else "")
                + f"; use one of the {DATASET_NAMES[other]} splits "
                f"({', '.join(n for n, s in NAMED_SPLITS.items() if s.dataset == other)}) or "
                f"point data.root at {DATASET_NAMES[named.dataset]}")
    if missing:
        raise DataError(f"data.tasks: category {missing[0]!r} is not in {where}"
                        + (f" (nor {', '.join(missing[1:])})" if missing[1:] else "")
                        + f"; categories found: {', '.join(found)}. Fix the name or remove it "
                        "from data.tasks")
    unused = [c for c in found if c not in wanted]
    if unused and not allow_unused:
        raise DataError(f"data.tasks leaves out {len(unused)} categor"
                        f"{'y' if len(unused) == 1 else 'ies'} of {where}: {', '.join(unused)}; "
                        "add them to a task, or set data.allow_unused_categories: true to run "
                        "without them")
    return resolved
