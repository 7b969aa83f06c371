"""cl-bench's own continual strategies, declared light: their options models and specs.

A spec names its plugins' module only inside its ``make_plugins``, so that reading what the
strategies are (``cl-bench list``, config validation, the report) does not import Avalanche; a
run imports the plugins when it builds them. The plugins themselves, with the papers they
follow, are in :mod:`strategies.continual.agem`, :mod:`strategies.continual.ewc`,
:mod:`strategies.continual.feature_distillation`, :mod:`strategies.continual.mas`,
:mod:`strategies.continual.replay` and :mod:`strategies.continual.si`;
:mod:`strategies.continual.registry` registers these specs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from strategies.continual.spec import StrategyOptions, StrategySpec


# ---- agem: plugins in strategies.continual.agem --------------------------------------------------
class AGEMOptions(StrategyOptions):
    """``patterns_per_experience``: images kept of each task; ``sample_size``: images of the
    memory batch that gives the reference gradient."""

    patterns_per_experience: int = Field(10, ge=1)
    sample_size: int = Field(8, ge=1)


def make_agem_plugins(options: AGEMOptions, seed: int) -> list:
    from strategies.continual.agem import SeededAGEMPlugin

    return [SeededAGEMPlugin(options.patterns_per_experience, options.sample_size, seed)]


AGEM_SPEC = StrategySpec(
    name="agem",
    description="Averaged GEM: gradients projected against an episodic memory's (Avalanche)",
    options=AGEMOptions,
    make_plugins=make_agem_plugins,
)


# ---- ewc: plugins in strategies.continual.ewc ----------------------------------------------------
class EWCOptions(StrategyOptions):
    """``ewc_lambda``: penalty strength; ``decay_factor``: online decay of the importances."""

    ewc_lambda: float = Field(100.0, ge=0)
    decay_factor: float = Field(0.9, gt=0, le=1)


def make_ewc_plugins(options: EWCOptions, seed: int) -> list:
    from strategies.continual.ewc import ResumableEWCPlugin

    return [ResumableEWCPlugin(options.ewc_lambda, mode="online",
                               decay_factor=options.decay_factor)]


EWC_SPEC = StrategySpec(
    name="ewc",
    description="Elastic Weight Consolidation, online (Avalanche's EWCPlugin)",
    options=EWCOptions,
    make_plugins=make_ewc_plugins,
)


# ---- feature_distillation: plugins in strategies.continual.feature_distillation ------------------
class FeatureDistillationOptions(StrategyOptions):
    """alpha * sum over branches and levels of the mean cosine distance to the previous
    task's students."""

    alpha: float = Field(1.0, ge=0)


def make_feature_distillation_plugins(options: FeatureDistillationOptions,
                                      seed: int) -> list:
    from strategies.continual.feature_distillation import StudentDistillationPlugin

    return [StudentDistillationPlugin(options.alpha)]


FEATURE_DISTILLATION_SPEC = StrategySpec(
    name="feature_distillation",
    description="feature distillation toward the previous task's students (LwF for features)",
    options=FeatureDistillationOptions,
    make_plugins=make_feature_distillation_plugins,
)


# ---- mas: plugins in strategies.continual.mas ----------------------------------------------------
class MASOptions(StrategyOptions):
    """``mas_lambda``: penalty strength (Avalanche's ``lambda_reg``); ``alpha``: weight of the
    earlier importances in the online blend."""

    mas_lambda: float = Field(1.0, ge=0)
    alpha: float = Field(0.5, ge=0, le=1)


def make_mas_plugins(options: MASOptions, seed: int) -> list:
    from strategies.continual.mas import ResumableMASPlugin

    return [ResumableMASPlugin(lambda_reg=options.mas_lambda, alpha=options.alpha)]


MAS_SPEC = StrategySpec(
    name="mas",
    description="Memory Aware Synapses on the students' features (Avalanche's MASPlugin)",
    options=MASOptions,
    make_plugins=make_mas_plugins,
)


# ---- replay: plugins in strategies.continual.replay ----------------------------------------------
class ReplayOptions(StrategyOptions):
    """Replay (docs/strategies.md). ``equal_compute``: ``train.batch_size`` images per step,
    ``round(batch_size * memory_fraction)`` of them from the buffer, naive's step count;
    ``additive``: ``train.batch_size`` new + ``batch_size_mem`` memory images per step
    (``None``: ``train.batch_size``), the behaviour before equal compute existed."""

    buffer_size: int = Field(40, ge=1)
    mode: Literal["equal_compute", "additive"] = "equal_compute"
    memory_fraction: float = Field(0.5, gt=0, lt=1)
    batch_size_mem: int | None = Field(None, ge=1)


def make_replay_plugins(options: ReplayOptions, seed: int) -> list:
    from strategies.continual.replay import SeededReplayPlugin

    return [SeededReplayPlugin(options.buffer_size, seed, mode=options.mode,
                               memory_fraction=options.memory_fraction,
                               batch_size_mem=options.batch_size_mem)]


REPLAY_SPEC = StrategySpec(
    name="replay",
    description="experience replay from a seeded, experience-balanced buffer",
    options=ReplayOptions,
    make_plugins=make_replay_plugins,
)


# ---- si: plugins in strategies.continual.si ------------------------------------------------------
class SIOptions(StrategyOptions):
    """Synaptic Intelligence (Zenke et al. 2017): penalty strength c, damping xi, clamp of the
    importances: at least ``importance_min`` (0 by default; ``null`` keeps negative
    importances), at most ``importance_max`` (off by default)."""

    si_lambda: float = Field(1.0, ge=0)
    xi: float = Field(1e-3, gt=0)
    importance_min: float | None = 0.0
    importance_max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_eps(cls, data: Any) -> Any:
        if isinstance(data, dict) and "eps" in data:
            raise ValueError(
                "strategy.si.eps is now strategy.si.xi (SI was re-implemented after Zenke et "
                "al. 2017, see docs/strategies.md); rename the key. A run made with the old SI "
                "cannot be resumed: its records are not comparable with the new SI")
        return data


def make_si_plugins(options: SIOptions, seed: int) -> list:
    from strategies.continual.si import SIPlugin

    return [SIPlugin(options.si_lambda, xi=options.xi, importance_min=options.importance_min,
                     importance_max=options.importance_max)]


SI_SPEC = StrategySpec(
    name="si",
    description="Synaptic Intelligence (Zenke et al. 2017), path-integral importances",
    options=SIOptions,
    make_plugins=make_si_plugins,
)
