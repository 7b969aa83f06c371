"""Progress settings (``cl-bench run --progress``), without the plugin's heavy imports.

See :mod:`cl_bench.progress` for what each mode prints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

MODES = ("auto", "bar", "lines", "off")
#: seconds between two progress lines (``--progress-interval``)
DEFAULT_INTERVAL_S = 30.0


def _print_flushed(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Progress:
    """How a run reports progress; :func:`resolve_progress` turns ``auto`` into bar or lines."""

    mode: str = "auto"
    interval_s: float = DEFAULT_INTERVAL_S
    task_names: tuple[str, ...] = ()
    joint: bool = False
    log: Callable[[str], None] = field(default=_print_flushed, compare=False)


def resolve_progress(value: Progress | str | bool | None, **fields) -> Progress:
    """A :class:`Progress` with a concrete mode from ``value``.

    ``None``/``"auto"``: bars on a TTY, lines otherwise; ``True``: bars; ``False``: off (what
    earlier versions took); a mode name or a :class:`Progress`; ``fields`` replace attributes.
    """
    if isinstance(value, Progress):
        progress = value
    elif value is None:
        progress = Progress("auto")
    elif isinstance(value, bool):
        progress = Progress("bar" if value else "off")
    elif value in MODES:
        progress = Progress(value)
    else:
        raise ValueError(f"progress mode {value!r}: choose one of {', '.join(MODES)}")
    if fields:
        progress = replace(progress, **fields)
    if progress.mode == "auto":
        progress = replace(progress, mode="bar" if sys.stderr.isatty() else "lines")
    return progress
