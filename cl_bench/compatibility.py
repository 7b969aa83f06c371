"""Every detector x strategy pairing of a configuration, checked when the configuration is.

A detector that learns without gradients (``learns_without_gradients``, e.g. PatchCore's
memory bank) is fitted in one pass per task; a plugin that acts in the gradient loop (it
overrides one of :data:`strategies.training.avalanche_strategy.GRADIENT_HOOKS`: EWC's penalty, SI,
student distillation, MAS, A-GEM) would do nothing there. :func:`check_pairings` refuses such a
pairing with one :class:`ConfigError` from :func:`cl_bench.config.validate`, so ``cl-bench run``
stops before a run folder exists and ``cl-bench sweep`` before any cell runs. The plugins are
built as the run builds them (the strategy's options for that detector, seed 0) and their
hooks read, so a strategy of the user's own is judged like the built-in ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cl_bench.errors import ConfigError

if TYPE_CHECKING:
    from strategies.continual.spec import StrategySpec


def gradient_loop_plugins(spec: StrategySpec, options: object) -> list[str]:
    """``"<Plugin>: <hook>, ..."`` for each plugin of ``spec`` that acts in the gradient loop."""
    # Avalanche is imported only when a gradient-free detector is configured
    from strategies.training.avalanche_strategy import gradient_loop_hooks

    found = []
    for plugin in spec.build_plugins(options, 0):
        hooks = gradient_loop_hooks(plugin)
        if hooks:
            found.append(f"{type(plugin).__name__}: {', '.join(hooks)}")
    return found


def _fitting_strategies() -> list[str]:
    """The registered strategies whose plugins (default options) stay out of the gradient loop."""
    from strategies.continual.registry import get_strategy, strategy_names

    names = []
    for name in strategy_names():
        spec = get_strategy(name)
        if not gradient_loop_plugins(spec, spec.options() if spec.options else None):
            names.append(name)
    return names


def check_pairings(cfg: Any) -> None:
    """Refuse a strategy acting in the gradient loop paired with a gradient-free detector
    (``cfg``: a validated :class:`cl_bench.config.ExperimentConfig`)."""
    from strategies.detectors import get_detector

    spec = cfg.strategy.spec()
    for method in cfg.model.methods:
        if not get_detector(method).learns_without_gradients:
            continue
        acting = gradient_loop_plugins(spec, cfg.strategy.options_for(method))
        if acting:
            raise ConfigError(
                f"strategy.name: {spec.name!r} acts in the gradient loop ({'; '.join(acting)}), "
                f"but model.methods has {method!r}, which learns without gradients: the "
                f"strategy would do nothing for it. Run {method} with a strategy that fits it "
                f"({', '.join(_fitting_strategies())}), or remove {method} from model.methods")
