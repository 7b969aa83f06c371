"""Errors caused by user input. The command line prints them without a traceback."""


class CLBenchError(Exception):
    """Base class: a message that says what was wrong and how to fix it."""


class DataError(CLBenchError):
    """A dataset folder or file is missing, malformed or unreadable."""


class ConfigError(CLBenchError):
    """A configuration key is unknown, of the wrong type or out of range."""


class RunError(CLBenchError):
    """A run cannot start, resume or continue (bad run folder, diverged loss, ...)."""
