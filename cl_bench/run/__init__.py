"""One run of an experiment: the task stream trained and tested step by step.

The modules import downward only (checked by import-linter, ``pyproject.toml``):

- :mod:`~cl_bench.run.experiment`: ``run_experiment`` and ``resume_run``: the run folder, its
  manifest, lock and configuration, and the dispatch to a loop by the strategy's stream kind;
- :mod:`~cl_bench.run.resume`: where an interrupted run restarts (the last checkpointed step);
- :mod:`~cl_bench.run.sequential`: one strategy trained task after task (sequential, joint and
  cumulative streams), tested on every task after each step;
- :mod:`~cl_bench.run.per_task`: one detector per task (``independent``), its pooled scores;
- :mod:`~cl_bench.run.steps`: what one step does (build the strategy, train, evaluate, records,
  checkpoint);
- :mod:`~cl_bench.run.context`: what the steps of a run share (configuration, device, manifest,
  records writer, feature store);
- :mod:`~cl_bench.run.layout` and :mod:`~cl_bench.run.lock`: every path inside a run folder, and
  the lock that keeps two processes out of one folder.

Nothing is imported here, so that the report can read :mod:`~cl_bench.run.layout` without
loading the training code.
"""
