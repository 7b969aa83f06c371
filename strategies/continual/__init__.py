"""The continual strategies: each declared once as a spec, its plugins, and routing.

- :mod:`strategies.continual.spec` and :mod:`strategies.continual.registry`: what a strategy is
  (``StrategySpec``) and the registry that looks strategies up by name (built-ins, entry
  points, ``register_strategy``); :mod:`strategies.continual.builtin_specs` declares
  cl-bench's own;
- the plugins and their options: :mod:`~strategies.continual.replay`,
  :mod:`~strategies.continual.ewc`, :mod:`~strategies.continual.si`,
  :mod:`~strategies.continual.mas`, :mod:`~strategies.continual.agem`,
  :mod:`~strategies.continual.feature_distillation`, :mod:`~strategies.continual.cumulative`
  (a stream kind, no plugin); :mod:`strategies.continual.plugins` saves and restores their
  state on resume, :mod:`strategies.continual.plugin_state` encodes it as plain tensors;
- :mod:`strategies.continual.routing`: one expert per task and a task router.

The top layer of :mod:`strategies`: it may import the detectors, teachers and training layers,
none of which imports it.
"""
