"""Experiment configuration: schema, defaults, YAML loading, ``--set`` overrides and validation.

The schema is declared with pydantic (a well-kept validation library) so that an unknown key, a
wrong type or an out-of-range value ends in one error naming the key path and what is allowed.
Detector, backbone and strategy names are checked against the registries in :mod:`strategies`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from cl_bench.errors import ConfigError

if TYPE_CHECKING:
    from strategies.continual.spec import StrategySpec

METRICS = ("image_auroc", "image_ap", "pixel_auroc", "pixel_ap", "au_pro")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticData(_Section):
    """Parameters of the generated MVTec-like data (``cl-bench data synth``)."""

    categories: int = Field(5, ge=1, le=12)
    train: int = Field(20, ge=1, le=10_000)
    test: int = Field(20, ge=2, le=10_000)
    size: int = Field(128, ge=32, le=2048)
    seed: int = 0
    #: N look-alike variants of ``family`` after the ``categories`` (docs/data.md)
    lookalike: int = Field(0, ge=0, le=8)
    family: Literal["stripes", "checker", "weave", "dots", "wood"] = "stripes"


#: dataset layouts (cl_bench.data.formats); "auto" detects the layout from the root
DataFormat = Literal["auto", "mvtec", "visa", "btad"]


class DataSource(_Section):
    """One dataset of a cross-dataset task sequence; its tasks are named ``<name>/<category>``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    root: str
    format: DataFormat = "auto"
    categories: list[str] | None = Field(None, min_length=1)


class DataConfig(_Section):
    """Where the tasks come from. ``root`` (with ``format``) is one dataset whose categories are
    the tasks; ``sources`` is several datasets in a stated order (docs/datasets.md)."""

    source: Literal["synthetic", "folder"] = "synthetic"
    root: str | None = None
    format: DataFormat = "auto"
    sources: list[DataSource] | None = Field(None, min_length=1)
    synthetic: SyntheticData = SyntheticData()
    categories: list[str] | None = None
    #: tasks of several categories: a named split (cl_bench.data.splits) or a list of lists
    tasks: str | list[list[str]] | None = None
    #: with ``tasks``: run although some categories of the data are in no task (opt-in)
    allow_unused_categories: bool = False
    order: Literal["alphabetical", "reversed", "random"] | list[str] = "alphabetical"
    order_seed: int = 0
    order_name: str | None = None  # the label of the order in records (sweeps set it)
    image_size: int = Field(128, ge=32, le=1024)
    cache_mb: int = Field(2048, ge=0)

    @field_validator("tasks", mode="before")
    @classmethod
    def _known_tasks(cls, value: Any) -> Any:
        """A split name or a list of non-empty tasks, each category in one task
        (:func:`cl_bench.data.splits.check_tasks`), checked before the type so that the
        message says what is wrong with the tasks."""
        if value is None:
            return value
        from cl_bench.data.splits import check_tasks

        try:
            check_tasks(value, where="tasks")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _tasks_alone(self) -> DataConfig:
        if self.tasks is None:
            if self.allow_unused_categories:
                raise ValueError("data.allow_unused_categories applies to data.tasks only")
            return self
        for key in ("categories", "sources"):
            if getattr(self, key) is not None:
                raise ValueError(f"give data.tasks or data.{key}, not both (data.tasks names "
                                 "the categories)")
        if isinstance(self.order, list):
            raise ValueError("with data.tasks, write the tasks in the order wanted; data.order "
                             "takes alphabetical (as given), reversed or random")
        return self

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> DataConfig:
        if self.sources is None:
            return self
        if self.root is not None:
            raise ValueError("give data.root (one dataset) or data.sources (several), not both")
        if self.source != "folder":
            raise ValueError("data.sources needs data.source: folder")
        if self.format != "auto":
            raise ValueError("data.format applies to data.root; with data.sources give each "
                             "source its own format")
        names = [s.name for s in self.sources]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"data.sources: name {', '.join(repeated)} is used twice; task "
                             "names are <source name>/<category>, so each source needs its own")
        return self


#: the detectors an experiment compares unless it says otherwise: the seed paper's hybrid and the
#: two distillation detectors it combines. A default of the experiment, not the list of the
#: detectors (that is the registry's, strategies.detectors.detector_names): deriving it from the
#: registry would add PatchCore and every installed plugin's detector to each config that omits
#: model.methods, and change its runs.
DEFAULT_METHODS = ("hybrid", "stpm", "rd4ad")


class ModelConfig(_Section):
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class OptimizerConfig(_Section):
    name: Literal["adam", "sgd", "adamw"] = "adam"
    lr: float = Field(0.005, gt=0, le=10)
    betas: tuple[float, float] = (0.5, 0.999)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    # torch's fused kernels: the same update, rounded differently; a faster Adam step
    # (measured: docs/performance.md, "Optimizer step")
    fused: bool = True


class ScheduleConfig(_Section):
    """The learning-rate schedule of one task: restarted at every task, stepped per iteration
    (formulas in :mod:`strategies.training.schedules` and docs/training.md)."""

    name: Literal["constant", "warmup_linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    warmup_fraction: float = Field(0.0, ge=0, lt=1)
    min_lr_factor: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _coherent(self) -> ScheduleConfig:
        if self.warmup_steps and self.warmup_fraction:
            raise ValueError("give warmup_steps or warmup_fraction, not both")
        if self.name == "constant" and (self.warmup_steps or self.warmup_fraction
                                        or self.min_lr_factor):
            raise ValueError("the constant schedule has no warm-up and no minimum; remove "
                             "warmup_steps/warmup_fraction/min_lr_factor or choose "
                             "warmup_linear or cosine")
        if self.name == "warmup_linear" and self.min_lr_factor:
            raise ValueError("warmup_linear decays to 0; min_lr_factor applies to cosine only")
        return self


class TrainSettings(_Section):
    """How one detector trains: epochs, batch size, optimizer, learning-rate schedule."""

    epochs: int = Field(5, ge=1, le=10_000)
    batch_size: int = Field(8, ge=1, le=4096)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    reset_optimizer: bool = True


def _overlay(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys; a section (optimizer, schedule) is merged key by key,
    unless the override names another ``name``: then it starts from that kind's defaults."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        inherited = merged.get(key)
        if isinstance(value, dict) and isinstance(inherited, dict):
            renamed = "name" in value and value["name"] != inherited.get("name")
            merged[key] = dict(value) if renamed else {**inherited, **value}
        else:
            merged[key] = value
    return merged


class TrainConfig(TrainSettings):
    """The ``train`` section: settings for every detector, and ``per_method`` overrides.

    ``per_method.<detector>`` holds any keys of this section (except ``per_method``); they
    replace the shared values for that detector only. They are resolved when the configuration
    is validated, so ``config.yaml`` holds each listed detector's complete settings.
    """

    per_method: dict[str, TrainSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _resolve_per_method(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("per_method"), dict):
            return data
        shared = {k: v for k, v in data.items() if k != "per_method"}
        try:
            base = TrainSettings.model_validate(shared).model_dump()
        except ValidationError:
            return data  # reported at its own key path; the overrides are checked alone
        resolved = {method: _overlay(base, override) if isinstance(override, dict) else override
                    for method, override in data["per_method"].items()}
        return {**data, "per_method": resolved}

    def for_method(self, method: str) -> TrainSettings:
        """The settings ``method`` trains with (its ``per_method`` entry or the shared ones)."""
        if method in self.per_method:
            return self.per_method[method]
        return TrainSettings.model_validate(self.model_dump(exclude={"per_method"}))


class StrategyConfig(_Section):
    """The ``strategy`` section: ``name`` (a registered strategy,
    :mod:`strategies.continual.registry`) and one section ``strategy.<name>`` per registered
    strategy that has options, validated by that strategy's options model. The fields are those of
    the registry when the configuration is validated (:func:`strategy_config_model`); this class is
    the one for the built-ins."""

    name: str = "naive"
    #: ``per_method.<detector>.<strategy>``: option overrides of that strategy for one detector
    #: (e.g. a smaller EWC lambda for a detector trained with SGD); validated by the strategy's
    #: options model over the shared section, see :meth:`options_for`
    per_method: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from strategies.continual.registry import get_strategy

        get_strategy(value)  # an unknown name: an error listing the known ones
        return value

    def spec(self) -> StrategySpec:
        """The registered :class:`~strategies.continual.spec.StrategySpec` of ``name``."""
        from strategies.continual.registry import get_strategy

        return get_strategy(self.name)

    def options(self) -> BaseModel | None:
        """The validated options of the selected strategy (``None`` when it has none)."""
        return getattr(self, self.name, None) if self.spec().options is not None else None

    def options_for(self, method: str) -> BaseModel | None:
        """The options ``method`` runs the selected strategy with: the shared section
        ``strategy.<name>`` with the keys of ``strategy.per_method.<method>.<name>`` replaced."""
        shared = self.options()
        override = self.per_method.get(method, {}).get(self.name)
        if shared is None or not override:
            return shared
        return type(shared).model_validate({**shared.model_dump(), **override})

    @model_validator(mode="after")
    def _check_per_method(self) -> StrategyConfig:
        from strategies.continual.registry import get_strategy

        for method, sections in self.per_method.items():
            for name, override in sections.items():
                where = f"strategy.per_method.{method}.{name}"
                spec = get_strategy(name)  # an unknown strategy: an error listing the known ones
                shared = getattr(self, name, None)
                if spec.options is None or shared is None:
                    raise ValueError(f"{where}: strategy {name!r} has no options to override")
                try:
                    type(shared).model_validate({**shared.model_dump(), **override})
                except ValidationError as exc:
                    problems = "; ".join(
                        f"{where}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                        for err in exc.errors())
                    raise ValueError(problems) from None
        return self


def strategy_config_model() -> type[StrategyConfig]:
    """A :class:`StrategyConfig` subclass with one field per registered strategy with options
    (``strategy.<name>``, default: the options model's defaults), in registration order."""
    from strategies.continual.registry import get_strategy, strategy_names

    sections: dict[str, Any] = {}
    for name in strategy_names():
        options = get_strategy(name).options
        if options is not None:
            sections[name] = (options, Field(default_factory=options))
    return create_model("StrategyConfig", __base__=StrategyConfig, __module__=__name__,
                        **sections)


class EvalConfig(_Section):
    batch_size: int = Field(16, ge=1)
    metrics: list[Literal["image_auroc", "image_ap", "pixel_auroc", "pixel_ap", "au_pro"]] = Field(
        default_factory=lambda: list(METRICS), min_length=1
    )
    pro_fpr_limit: float = Field(0.3, gt=0, le=1)
    saved_maps_per_task: int = Field(4, ge=0, le=64)
    loggers: list[Literal["interactive", "text", "tensorboard"]] = Field(default_factory=list)


class PerformanceConfig(_Section):
    """Speed options. The teacher-feature cache reuses the frozen teacher's features of every
    image seen before (exact in float32 up to batch-composition effects in the last bits)."""

    teacher_cache: bool = False
    teacher_cache_mb: int = Field(4096, ge=0)
    teacher_cache_dtype: Literal["float32", "float16"] = "float32"
    autocast_bf16: bool = False
    channels_last: bool = False
    #: ``all``: the students after every step stay in ``checkpoints/`` (a resume whose last
    #: checkpoint is damaged falls back to the step before); ``last``: each step's checkpoint
    #: replaces the previous one once the step is recorded, so a run keeps one per cell (a
    #: strategy that keeps one expert per task, such as routing, otherwise writes T(T+1)/2
    #: expert copies), and a damaged last checkpoint means the cell restarts from the seed
    keep_checkpoints: Literal["all", "last"] = "all"


class ComparePair(_Section):
    """One paired comparison of the report (docs/statistics.md, "Comparisons"): either two
    ``strategies`` within each detector (or the ``within`` one), or two ``detectors`` within
    each strategy (or the ``within`` one); the difference is first minus second."""

    strategies: tuple[str, str] | None = None
    detectors: tuple[str, str] | None = None
    within: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ComparePair:
        if (self.strategies is None) == (self.detectors is None):
            raise ValueError("give either strategies: [A, B] (A against B within a detector) or "
                             "detectors: [A, B] (A against B within a strategy)")
        pair = self.strategies or self.detectors
        if pair[0] == pair[1]:
            raise ValueError(f"a pair compares two different names, got {pair[0]} twice")
        return self


class ReportConfig(_Section):
    """``report.compare``: the pairs of the report's paired comparison; ``null`` (the default)
    takes the hybrid against each baseline, each strategy against naive and routing against
    independent (:mod:`cl_bench.report.compare`)."""

    compare: list[ComparePair] | None = None


def resolve_train_defaults(data: Any) -> Any:
    """Lay each detector's paper training defaults (``train_defaults`` of its registration,
    :class:`strategies.detectors.registry.DetectorSpec`) under the experiment's own settings.

    For every detector of ``model.methods`` that has defaults, ``train.per_method.<detector>``
    becomes: its paper defaults, then the keys the experiment's ``train`` section sets, then the
    keys of its own ``train.per_method.<detector>`` entry (each merged key by key, a section
    that names another ``name`` starting from that kind's defaults). So an experiment that says
    nothing trains each detector as its paper did; a shared ``train.optimizer`` overrides every
    detector's; ``train.per_method`` overrides one. Raw (unvalidated) data in, raw data out.
    """
    if not isinstance(data, dict):
        return data
    train = data.get("train", {})
    model = data.get("model", {})
    if not isinstance(train, dict) or not isinstance(model, dict):
        return data
    methods = model.get("methods", ModelConfig().methods)
    if not isinstance(methods, list):
        return data
    from strategies.detectors import detector_names, get_detector

    known = set(detector_names())
    given = {k: v for k, v in train.items() if k != "per_method"}
    per_method = train.get("per_method") or {}
    if not isinstance(per_method, dict):
        return data
    resolved = dict(per_method)
    for method in methods:
        if not isinstance(method, str) or method not in known:
            continue  # reported by the registry check, naming the allowed methods
        defaults = dict(get_detector(method).train_defaults)
        if not defaults:
            continue
        own = per_method.get(method) or {}
        if not isinstance(own, dict):
            continue  # reported at train.per_method.<method>
        resolved[method] = _overlay(_overlay(defaults, given), own)
    if resolved == per_method:
        return data
    return {**data, "train": {**train, "per_method": resolved}}


class ExperimentConfig(_Section):
    experiment: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    performance: PerformanceConfig = PerformanceConfig()
    report: ReportConfig = ReportConfig()
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1)
    deterministic: bool = True
    #: modules imported before validation; they register detectors/strategies (docs/extending.md)
    plugins: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _paper_train_defaults(cls, data: Any) -> Any:
        return resolve_train_defaults(data)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or value.startswith("cuda:"):
            return value
        raise ValueError(f"unknown device {value!r}; allowed: auto, cpu, cuda, cuda:N")


_synced_registry_version: int | None = None


def sync_strategy_sections() -> None:
    """Give :class:`ExperimentConfig` the ``strategy`` sections of the registry as it is now.

    Called before a configuration is validated or its schema is read (sweep grids), so that a
    strategy registered after this module was imported (an entry point, a test) has its
    ``strategy.<name>`` section. Imports :mod:`strategies.continual.registry` (and so Avalanche) on
    first use only, which keeps ``import cl_bench.config`` light.
    """
    global _synced_registry_version
    from strategies.continual.registry import registry_version

    version = registry_version()
    if version == _synced_registry_version:
        return
    model = strategy_config_model()
    field = ExperimentConfig.model_fields["strategy"]
    field.annotation, field.default_factory = model, model
    ExperimentConfig.model_rebuild(force=True)
    _synced_registry_version = version


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        given = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  {path}: {msg}{shown}")
    return "\n".join(lines)


def _allowed_keys(loc: tuple) -> list[str]:
    sync_strategy_sections()
    model: type[BaseModel] = ExperimentConfig
    parts = iter(loc)
    for part in parts:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if get_origin(annotation) is dict:  # e.g. train.per_method.<detector>: skip the name
            annotation = get_args(annotation)[1]
            if next(parts, None) is None:
                return []
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return sorted(model.model_fields)


def _check_registries(cfg: ExperimentConfig) -> None:
    """Names that live in the :mod:`strategies` registries."""
    from strategies.detectors import DetectorOptionError, detector_names, validate_options
    from strategies.teachers.backbones import available_backbones

    detectors = detector_names()
    for i, method in enumerate(cfg.model.methods):
        if method not in detectors:
            raise ConfigError(
                f"model.methods[{i}]: unknown method {method!r}; allowed: {', '.join(detectors)}"
            )
    if len(set(cfg.model.methods)) != len(cfg.model.methods):
        raise ConfigError(f"model.methods: a method is listed twice: {cfg.model.methods}")
    backbones = available_backbones()
    if cfg.model.backbone not in backbones:
        raise ConfigError(
            f"model.backbone: unknown backbone {cfg.model.backbone!r}; "
            f"allowed: {', '.join(backbones)}"
        )
    for method, options in cfg.model.options.items():
        if method not in detectors:
            raise ConfigError(
                f"model.options.{method}: unknown method; allowed: {', '.join(detectors)}"
            )
        try:  # types, ranges and the checks across options of the detector's options model
            validate_options(method, options, where="model.options.")
        except DetectorOptionError as exc:
            raise ConfigError(str(exc)) from None
    for section, per_method in (("train", cfg.train.per_method),
                                ("strategy", cfg.strategy.per_method)):
        for method in per_method:
            if method not in detectors:
                raise ConfigError(f"{section}.per_method.{method}: unknown method; allowed: "
                                  f"{', '.join(detectors)}")
    if cfg.data.source == "folder" and not cfg.data.root and not cfg.data.sources:
        raise ConfigError(
            "data.root: data.source is 'folder' but no root is given; set data.root to the "
            "folder holding <category>/train/good (e.g. --set data.root=/data/mvtec_ad)"
        )


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key.path=value`` -> (["key", "path"], value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set {text!r}: empty key")
    path = key.strip().split(".")
    if any(not part.strip() for part in path):
        raise ConfigError(f"--set {text!r}: empty part in the key {key.strip()!r}; write "
                          "section.key=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at character {mark.column + 1}" if mark is not None and mark.line == 0 else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"--set {text!r}: the value {raw!r} is not valid YAML ({problem}{where}); close "
            f"the bracket or quote (a list is written [a,b], e.g. --set "
            f"\"{key.strip()}=[a,b]\"), or, for a plain string, quote it: --set "
            f"'{key.strip()}=\"{raw}\"'") from None
    return path, value


def set_key(raw: dict, path: list[str], value: Any, context: str) -> None:
    """Set ``raw[path[0]][path[1]]... = value`` in place, creating missing sections."""
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{context}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    result = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        set_key(result, path, value, f"--set {text!r}")
    return result


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got a {kind}")
    return raw


def validate(raw: dict, source: str = "<config>") -> ExperimentConfig:
    """Validate a raw mapping; raise :class:`ConfigError` naming every bad key path.

    First the detectors and strategies of installed entry points and of the ``plugins``
    modules are registered (:mod:`cl_bench.extensions`), so their names are checked too; then
    every detector x strategy pairing (:mod:`cl_bench.compatibility`)."""
    from cl_bench.compatibility import check_pairings
    from cl_bench.extensions import load_extensions

    load_extensions(raw.get("plugins") if isinstance(raw, dict) else None)
    sync_strategy_sections()
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    _check_registries(cfg)
    check_pairings(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML file, apply ``--set key=value`` overrides, validate, fill defaults."""
    raw = apply_overrides(load_yaml(path), overrides or [])
    if "grid" in raw:
        raise ConfigError(f"{path} has a 'grid' section, which describes a sweep: run it with "
                          f"`cl-bench sweep {path}`")
    return validate(raw, source=str(path))


def to_yaml(cfg: ExperimentConfig) -> str:
    """The resolved configuration (every default filled in) as YAML."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


#: top-level keys that cannot change what a run computes (free text)
NOT_RUN_KEYS = ("description",)


def relevant_to_run(config: dict) -> dict:
    """``config`` with its ``strategy`` section reduced to what the run uses: the name and, for
    each detector of ``model.methods``, the options it runs the strategy with (the shared
    section ``strategy.<name>`` with ``strategy.per_method.<detector>.<name>`` laid over it).

    Sections of other strategies cannot change a run (a naive cell made before the sweep file
    changed the EWC strength is still the same naive cell), and an override written per
    detector is the same run as the same value written in the shared section. The free-text
    ``description`` is left out: rewording it changes no record.
    """
    config = {k: v for k, v in config.items() if k not in NOT_RUN_KEYS}
    strategy = config.get("strategy")
    if not isinstance(strategy, dict):
        return config
    name = strategy.get("name")
    shared = strategy.get(name) if isinstance(strategy.get(name), dict) else {}
    per_method = strategy.get("per_method") if isinstance(strategy.get("per_method"), dict) else {}
    methods = (config.get("model") or {}).get("methods") or []
    options = {}
    for method in methods:
        override = (per_method.get(method) or {}).get(name) or {}
        options[method] = {**shared, **override}
    return {**config, "strategy": {"name": name, "options": options}}
