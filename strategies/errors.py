"""Errors of the detector layer caused by user input (weights, checkpoints, training faults)."""


class StrategiesError(Exception):
    """Base class: a message that says what was wrong and how to fix it."""


class WeightsError(StrategiesError):
    """Pretrained weights cannot be found, downloaded or loaded."""


class CheckpointError(StrategiesError):
    """A checkpoint is truncated, foreign or does not match the detector."""


class DivergedError(StrategiesError):
    """The training loss became NaN or infinite."""


class OptimizerError(StrategiesError):
    """An optimizer setting this torch build or device cannot honour."""


class StrategyRegistryError(StrategiesError, ValueError):
    """An unknown strategy name, or a second registration of a strategy name."""


class EntryPointError(StrategiesError):
    """An entry point of an installed distribution cannot be loaded or names no spec."""
