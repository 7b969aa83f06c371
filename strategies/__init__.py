"""Detectors, teacher backbones and the Avalanche strategies that train them.

Subpackages, each importing only from those below it (the ``layers`` import contract):

- :mod:`strategies.continual`: the continual strategies (specs, registry, plugins, routing);
- :mod:`strategies.training`: the Avalanche training strategy, optimizers, learning-rate
  schedules, checkpoints and atomic file writes;
- :mod:`strategies.detectors`: the anomaly detectors (STPM, RD4AD, hybrid, PatchCore);
- :mod:`strategies.teachers`: the frozen teacher backbones and the teacher-feature cache;
- the shared bottom: :mod:`strategies.entry_points` (specs declared by installed
  distributions) and :mod:`strategies.errors` (the errors caused by user input).

This package never imports :mod:`cl_bench` (docs/architecture.md, the import contracts).
"""
