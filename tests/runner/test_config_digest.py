"""``--resume`` refuses a ``config.yaml`` changed since the run began (issue #27, deliverable 5)."""

from __future__ import annotations

import json

import yaml
from fault_helpers import cli, fake_run, snapshot

from cl_bench.run.digest import config_changes, config_digest


def _edit(run_dir, **changes) -> None:
    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(yaml.safe_dump(raw))


def test_a_new_run_records_the_digest_of_its_config(tiny_config, tmp_path) -> None:
    from cl_bench.run.experiment import run_experiment

    run_dir = run_experiment(tiny_config(), out_root=tmp_path, log=lambda _: None,
                             progress=False)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert manifest["config_digest"] == config_digest(written)
    assert manifest["config_at_start"] == written


def test_resume_refuses_a_changed_config_and_names_the_keys(capsys, tmp_path,
                                                            synthetic_cache) -> None:
    run_dir = fake_run(tmp_path / "tiny" / "run1", **{"train.epochs": 6})
    _edit(run_dir, **{"train.epochs": 1, "eval.batch_size": 4})
    before = snapshot(run_dir)
    status, said = cli(capsys, "run", "--resume", str(run_dir), "--no-report")
    assert status == 2 and "Traceback" not in said
    assert "train.epochs: 6 -> 1" in said and "eval.batch_size: 8 -> 4" in said
    assert "--allow-config-change" in said and str(run_dir / "config.yaml") in said
    assert snapshot(run_dir) == before  # nothing written, not even a lock file


def test_comments_and_layout_are_not_a_change(capsys, tmp_path, synthetic_cache) -> None:
    from cl_bench.run.experiment import load_run_for_resume

    run_dir = fake_run(tmp_path / "tiny" / "run1")
    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    path.write_text("# a note added by hand\n" + yaml.safe_dump(raw, sort_keys=True, indent=4))
    said: list[str] = []
    _, manifest = load_run_for_resume(run_dir, said.append)
    assert not said and "config_changes" not in manifest.data


def test_allow_config_change_resumes_and_records_the_change(capsys, tmp_path,
                                                            synthetic_cache) -> None:
    run_dir = fake_run(tmp_path / "tiny" / "run1")
    _edit(run_dir, **{"train.epochs": 2})
    status, said = cli(capsys, "run", "--resume", str(run_dir), "--no-report",
                       "--allow-config-change", "--progress", "off")
    assert status == 0, said
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    (change,) = manifest["config_changes"]
    assert change["keys"] == {"train.epochs": {"old": 1, "new": 2}} and change["at"]
    assert manifest["config_digest"] == config_digest(
        yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert any("--allow-config-change" in w for w in manifest["warnings"])


def test_allow_config_change_only_with_resume(capsys, tmp_path, synthetic_cache) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("experiment: x\n")
    status, said = cli(capsys, "run", str(config), "--allow-config-change")
    assert status == 2 and "--resume" in said


def test_a_run_without_a_digest_is_warned_about_and_gets_one(tmp_path, synthetic_cache) -> None:
    from cl_bench.manifest import Manifest
    from cl_bench.run.experiment import load_run_for_resume

    run_dir = fake_run(tmp_path / "tiny" / "run1")
    manifest = Manifest.load(run_dir / "manifest.json")
    del manifest.data["config_digest"], manifest.data["config_at_start"]
    manifest.save()
    said: list[str] = []
    _, manifest = load_run_for_resume(run_dir, said.append)
    assert any("recorded no digest" in line for line in said)
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert manifest.data["config_digest"] == config_digest(written)


def test_config_changes_names_added_removed_and_nested_keys() -> None:
    old = {"train": {"epochs": 6, "lr": 0.1}, "a": 1}
    new = {"train": {"epochs": 1, "lr": 0.1}, "b": 2}
    assert config_changes(old, new) == {"a": (1, None), "b": (None, 2),
                                        "train.epochs": (6, 1)}
