"""``train.per_method``: validated, resolved into config.yaml and the manifest, used by runs,
resume, sweeps (``--set``) and ``train-one``; schedules in runs and on resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from runner_helpers import resume_cut_copy, tiny_raw

from cl_bench.config import ConfigError, load_config, to_yaml, validate
from cl_bench.run.experiment import run_experiment

SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}


# ---- validation and resolution ----------------------------------------------------------------
def test_per_method_overrides_only_the_keys_it_names() -> None:
    cfg = validate(tiny_raw(**{"train.optimizer": {"lr": 0.01, "fused": False},
                               "train.per_method": {"stpm": {"optimizer": SGD},
                                                    "rd4ad": {"epochs": 3,
                                                              "optimizer": {"lr": 0.002}}}}))
    stpm, rd4ad, hybrid = (cfg.train.for_method(m) for m in ("stpm", "rd4ad", "hybrid"))
    assert (stpm.optimizer.name, stpm.optimizer.lr, stpm.optimizer.weight_decay) == \
        ("sgd", 0.05, 1e-4)
    assert stpm.epochs == 1  # inherited from train.epochs
    # STPM's paper optimizer is SGD (its registration's train_defaults): the shared keys
    # without a name (lr, fused) are laid over it, then its own entry
    assert stpm.optimizer.fused is False
    # the same name merges key by key
    assert (rd4ad.epochs, rd4ad.optimizer.lr, rd4ad.optimizer.fused) == (3, 0.002, False)
    assert (hybrid.epochs, hybrid.optimizer.name, hybrid.optimizer.lr) == (1, "adam", 0.01)


def test_config_yaml_holds_the_resolved_settings_and_reloads_identically() -> None:
    cfg = validate(tiny_raw(**{"train.per_method": {"stpm": {"optimizer": SGD}}}))
    dumped = yaml.safe_load(to_yaml(cfg))
    assert dumped["train"]["per_method"]["stpm"]["epochs"] == 1
    assert dumped["train"]["per_method"]["stpm"]["optimizer"]["momentum"] == 0.9
    assert validate(dumped) == cfg


@pytest.mark.parametrize(("override", "message"), [
    ({"train.per_method": {"padim": {"epochs": 2}}},
     "train.per_method.padim: unknown method; allowed: stpm, rd4ad, hybrid, patchcore"),
    ({"train.per_method": {"stpm": {"epoch": 2}}},
     "train.per_method.stpm.epoch: unknown key; allowed keys here: batch_size, epochs, "
     "optimizer, reset_optimizer, schedule"),
    ({"train.per_method": {"stpm": {"optimizer": {"name": "lion"}}}},
     "train.per_method.stpm.optimizer.name"),
    ({"train.per_method": {"stpm": {"schedule": {"name": "cosine", "warmup_steps": 2,
                                                 "warmup_fraction": 0.1}}}},
     "train.per_method.stpm.schedule: give warmup_steps or warmup_fraction, not both"),
])
def test_bad_per_method_entries_name_their_key_path(override, message) -> None:
    with pytest.raises(ConfigError) as info:
        validate(tiny_raw(**override))
    assert message in str(info.value)


def test_set_override_reaches_per_method(tmp_path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(tiny_raw()))
    cfg = load_config(path, ["train.per_method.stpm.epochs=3",
                             "train.per_method.stpm.schedule.name=cosine"])
    assert cfg.train.for_method("stpm").epochs == 3
    assert cfg.train.for_method("stpm").schedule.name == "cosine"
    assert cfg.train.for_method("rd4ad").epochs == 1


def test_sweep_set_override_reaches_per_method() -> None:
    from cl_bench.sweep.grid import sweep_from_dict

    raw = {**tiny_raw(), "grid": {"model.methods": ["stpm", "rd4ad"]}}
    sweep = sweep_from_dict(raw, overrides=["train.per_method.stpm.epochs=3"])
    epochs = {tuple(c.config["model"]["methods"]): validate(c.config).train.for_method(
        c.config["model"]["methods"][0]).epochs for c in sweep.cells}
    assert epochs == {("stpm",): 3, ("rd4ad",): 1}


# ---- runs -------------------------------------------------------------------------------------
def _records(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "records.csv", dtype=str).drop(columns="run_id")


def _run(raw, tmp_path, name):
    return run_experiment(validate(raw), out_root=tmp_path / name, log=lambda _: None,
                          progress=False)


def test_per_method_changes_only_its_method_and_is_in_the_manifest(tmp_path,
                                                                   synthetic_cache) -> None:
    base = tiny_raw(**{"model.methods": ["stpm", "rd4ad"], "train.batch_size": 2})
    plain = _run(base, tmp_path, "plain")
    tuned = _run({**base, "train": {**base["train"], "per_method": {
        "stpm": {"optimizer": SGD, "epochs": 2}}}}, tmp_path, "tuned")
    a, b = _records(plain), _records(tuned)
    rd4ad = a["method"] == "rd4ad"
    pd.testing.assert_frame_equal(a[rd4ad], b[rd4ad])  # untouched method: identical records
    trained = (a["method"] == "stpm") & (a["step"] != "-1")
    assert not a[trained]["value"].equals(b[trained]["value"])
    cells = json.loads((tuned / "manifest.json").read_text())["cells"]
    assert cells["stpm/seed0"]["train"]["optimizer"]["name"] == "sgd"
    assert cells["stpm/seed0"]["train"]["epochs"] == 2
    assert cells["rd4ad/seed0"]["train"]["optimizer"]["name"] == "adam"
    saved = yaml.safe_load((tuned / "config.yaml").read_text())
    assert saved["train"]["per_method"]["stpm"]["optimizer"]["lr"] == 0.05


def test_a_schedule_changes_training(tmp_path, synthetic_cache) -> None:
    base = tiny_raw(**{"train.batch_size": 2})
    plain = _run(base, tmp_path, "plain")
    warm = _run(tiny_raw(**{"train.batch_size": 2, "train.schedule": {
        "name": "warmup_linear", "warmup_fraction": 0.5}}), tmp_path, "warm")
    trained = _records(plain)["step"] != "-1"
    assert not _records(plain)[trained]["value"].equals(_records(warm)[trained]["value"])


def test_resume_with_schedule_and_kept_optimizer_gives_identical_records(
        tmp_path, synthetic_cache) -> None:
    """Cut a run after each step and resume it: the next task's schedule starts from the
    configured rate (not the decayed one stored with the kept optimizer state), so the records
    equal the uninterrupted run's; the checkpoint holds the finished task's scheduler state."""
    import torch

    raw = tiny_raw(**{"model.methods": ["stpm"], "data.synthetic.categories": 3,
                      "train.batch_size": 2, "train.reset_optimizer": False,
                      "train.per_method": {"stpm": {"optimizer": SGD, "schedule": {
                          "name": "warmup_linear", "warmup_steps": 1}}}})
    full = _run(raw, tmp_path, "full")
    checkpoint = torch.load(full / "checkpoints" / "stpm" / "seed0" / "step00.pt",
                            weights_only=True)
    assert checkpoint["extra"]["lr_scheduler"]["last_epoch"] == 2  # 4 images / batch 2, 1 epoch
    for done in (0, 1):
        copy = resume_cut_copy(full, tmp_path, "stpm/seed0", done)
        pd.testing.assert_frame_equal(_records(copy), _records(full))


def test_train_one_uses_per_method_settings(tmp_path, monkeypatch, capsys) -> None:
    from cl_bench.cli import main

    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    config = tmp_path / "x.yaml"
    config.write_text(yaml.safe_dump({"train": {"epochs": 1, "batch_size": 4,
                                                "per_method": {"stpm": {"optimizer": SGD}}}}))
    code = main(["train-one", "--synthetic", "--synthetic-categories", "1", "--categories",
                 "all", "--detector", "stpm", "--image-size", "32", "--weights", "none",
                 "--config", str(config), "--set", "train.per_method.stpm.epochs=2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "# stpm: epochs=2 batch=4 optimizer={'name': 'sgd', 'lr': 0.05" in out
