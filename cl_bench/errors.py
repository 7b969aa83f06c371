"""Errors caused by user input or by the environment. The command line prints them without a
traceback and exits with status 2 (:class:`RunInterrupted`: 128 + the signal number)."""

from __future__ import annotations

import signal


class CLBenchError(Exception):
    """Base class: a message that says what was wrong and how to fix it."""


class DataError(CLBenchError):
    """A dataset folder or file is missing, malformed or unreadable."""


class ConfigError(CLBenchError):
    """A configuration key is unknown, of the wrong type or out of range."""


class RunError(CLBenchError):
    """A run cannot start, resume or continue (bad run folder, diverged loss, ...)."""


class RunLockedError(RunError):
    """Another process is writing the run folder right now."""


class Stopped(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM arrived; raised where the program was (like KeyboardInterrupt).

    A :class:`KeyboardInterrupt` so that ``except Exception`` blocks (a sweep that records a
    failing cell and goes on) do not swallow it.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class RunInterrupted(Stopped):
    """A run stopped by a signal after it marked its folder ``interrupted``.

    ``message`` says where it stopped and gives the exact ``--resume`` command; the command line
    exits with ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM), the shell's convention for a
    process ended by a signal, so scripts and schedulers see "stopped", not "bad input" (2).
    """

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.message = message

    def __str__(self) -> str:
        return self.message


def exit_status(signum: int) -> int:
    """The exit status of a process stopped by ``signum``: 128 + the signal number."""
    return 128 + int(signum)
