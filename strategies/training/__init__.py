"""Training a detector: the Avalanche strategy, optimizers, schedules, checkpoints, atomic writes.

- :mod:`strategies.training.avalanche_strategy`: ``DistillationStrategy``, the Avalanche
  strategy that trains any detector (gradient or gradient-free);
- :mod:`strategies.training.optimizers`: the students' optimizer (Adam, AdamW, SGD);
- :mod:`strategies.training.schedules`: learning-rate schedules;
- :mod:`strategies.training.checkpoint`: detector checkpoints (the students, never the teacher);
- :mod:`strategies.training.atomic`: atomic file writes, shared with the harness's own files.

Sits above :mod:`strategies.detectors` and below :mod:`strategies.continual`.
"""
