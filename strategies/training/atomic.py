"""Atomic file writes: a temporary file in the same folder, flushed, then renamed over the target.

A reader (or a run killed half-way) never sees a half-written file. Lives in :mod:`strategies`
(the lower layer) so that checkpoints and the harness's files share one implementation.

The temporary file is created with mode ``0o666`` filtered by the process umask (and the
folder's default ACL), exactly like a plain ``open(path, "w")``, so run files are as readable as
any other file the user writes. :func:`tempfile.mkstemp` is not used because it always creates
mode ``0o600``, which would leave every result unreadable to colleagues on a shared folder.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: the mode a new file asks for; the kernel removes the umask bits (``open(2)``)
FILE_MODE = 0o666


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, exclusively created ``.<name>.<random>.tmp`` in ``folder`` and its descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file for {name} in {folder}")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = os_error_behind(exc) if isinstance(exc, Exception) else None
        if cause is not None and (cause is not exc or not cause.filename):
            # the target's name, and the OSError behind a wrapper: torch.save turns a failed
            # write (a full disk) into "RuntimeError: [enforce fail at inline_container.cc]"
            raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from exc
        raise
    return path


def os_error_behind(exc: BaseException) -> OSError | None:
    """``exc`` itself when it is an :class:`OSError`, else the first OSError in its chain of
    causes and contexts (``None`` when there is none)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
