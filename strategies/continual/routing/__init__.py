"""The routing strategy: one expert detector per task and a task router that picks one per image.

- :mod:`strategies.continual.routing.router`: the task keys and the router;
- :mod:`strategies.continual.routing.plugin`: the Avalanche plugin that trains and routes experts;
- :mod:`strategies.continual.routing.options`: its options and spec;
- :mod:`strategies.continual.routing.diagnostics`: misrouting diagnostics after every step.
"""
