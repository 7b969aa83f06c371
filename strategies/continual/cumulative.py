"""Cumulative training: at step i the detector trains on the union of tasks 0..i.

The incremental upper bound of continual learning (as Avalanche's ``Cumulative`` strategy does
for classification): nothing is forgotten for want of data, at a training cost that grows with
every task (step i shows each epoch the training images of i+1 tasks). The students continue
from the previous step; the optimizer restarts at each step when ``train.reset_optimizer`` is
true (the default). The union is built by the task stream (stream kind ``cumulative``,
:func:`cl_bench.data.build_benchmark`), so no plugin is needed and a resumed run has nothing
to restore but the students. Records name the task added at step i as ``train_task``.
"""

from __future__ import annotations

from strategies.continual.spec import StrategySpec

SPEC = StrategySpec(
    name="cumulative",
    stream="cumulative",
    description="step i retrains on the union of tasks 0..i (incremental upper bound)",
)
