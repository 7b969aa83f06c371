"""Each detector's paper training defaults come with its registration; an experiment gets them
unless its train section or train.per_method overrides them."""

from __future__ import annotations

from pathlib import Path

import yaml
from runner_helpers import tiny_raw

from cl_bench.config import load_config, validate
from strategies.detectors import get_detector

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def test_visa_trains_stpm_with_its_papers_sgd() -> None:
    cfg = load_config(EXPERIMENTS / "visa.yaml", ["data.root=/tmp"])
    stpm = cfg.train.for_method("stpm").optimizer
    assert (stpm.name, stpm.lr, stpm.momentum, stpm.weight_decay) == ("sgd", 0.4, 0.9, 1e-4)
    rd4ad = cfg.train.for_method("rd4ad").optimizer
    assert (rd4ad.name, rd4ad.lr, tuple(rd4ad.betas)) == ("adam", 0.005, (0.5, 0.999))
    hybrid = cfg.train.for_method("hybrid")
    assert (hybrid.optimizer.name, hybrid.schedule.name, hybrid.schedule.warmup_fraction) == (
        "adam", "warmup_linear", 0.1)
    assert cfg.train.for_method("hybrid").epochs == 50  # the experiment's own keys stay


def test_no_experiment_file_copies_the_paper_optimizers() -> None:
    paths = [*EXPERIMENTS.glob("*.yaml"), *EXPERIMENTS.glob("tuning/*.yaml")]
    assert len(paths) >= 18
    for path in paths:
        train = yaml.safe_load(path.read_text()).get("train") or {}
        assert "optimizer" not in train and "schedule" not in train, path
        # a per-detector training length (chosen on the validation stream) is allowed; the
        # optimizer and its schedule come from the detector's registration only
        for method, keys in (train.get("per_method") or {}).items():
            assert set(keys) <= {"epochs"}, (path, method, keys)


def test_registration_carries_the_defaults() -> None:
    assert get_detector("stpm").train_defaults["optimizer"]["name"] == "sgd"
    assert get_detector("rd4ad").train_defaults["optimizer"]["lr"] == 0.005
    assert get_detector("hybrid").train_defaults["schedule"]["name"] == "warmup_linear"
    assert "loss" in get_detector("stpm").training_notes


def _raw(**overrides) -> dict:
    """tiny_raw without its shared optimizer and schedule (it pins Adam and a constant rate
    for the other runner tests)."""
    raw = tiny_raw(**overrides)
    given = {key.split(".")[1] for key in overrides if key.startswith("train.")}
    for key in ("optimizer", "schedule"):
        if key not in given:
            del raw["train"][key]
    return raw


def test_the_experiment_overrides_the_paper() -> None:
    stpm_only = {"model.methods": ["stpm", "rd4ad"]}
    # nothing said: the paper's SGD
    cfg = validate(_raw(**stpm_only))
    assert cfg.train.for_method("stpm").optimizer.name == "sgd"
    # a shared optimizer of another kind replaces every detector's
    cfg = validate(_raw(**stpm_only, **{"train.optimizer": {"name": "adamw", "lr": 0.01}}))
    assert cfg.train.for_method("stpm").optimizer.name == "adamw"
    assert cfg.train.for_method("rd4ad").optimizer.lr == 0.01
    # a shared learning rate alone keeps each paper's optimizer kind
    cfg = validate(_raw(**stpm_only, **{"train.optimizer": {"lr": 0.1}}))
    assert (cfg.train.for_method("stpm").optimizer.name,
            cfg.train.for_method("stpm").optimizer.lr) == ("sgd", 0.1)
    # per_method overrides one detector only
    cfg = validate(_raw(**stpm_only, **{"train.per_method": {"stpm": {"optimizer": {
        "lr": 0.2}}}}))
    assert cfg.train.for_method("stpm").optimizer.lr == 0.2
    assert cfg.train.for_method("stpm").optimizer.weight_decay == 1e-4
    assert cfg.train.for_method("rd4ad").optimizer.lr == 0.005


def test_resolved_config_validates_to_itself() -> None:
    """config.yaml (the resolved configuration) read back gives the same settings (resume)."""
    cfg = validate(_raw(**{"model.methods": ["stpm", "hybrid"]}))
    again = validate(cfg.model_dump(mode="json"))
    for method in ("stpm", "hybrid"):
        assert again.train.for_method(method) == cfg.train.for_method(method)
