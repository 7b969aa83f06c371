"""A full disk is reported as a full disk, with the file's path, and the run resumes once space is
freed (issue #27, deliverable 4). ENOSPC is simulated: the writer raises it as the kernel would."""

from __future__ import annotations

import errno
import io
import json

import pandas as pd
import pytest
import torch
from fault_helpers import cli, write_config

from strategies.training.atomic import atomic_write

NO_SPACE = "No space left on device"


def _torch_save_on_a_full_disk(obj, handle, *args, **kwargs) -> None:
    """What torch.save does when the disk fills: the OSError of the failed write is the
    context of torch's own RuntimeError."""
    handle.write(b"PK\x03\x04 partial")
    try:
        raise OSError(errno.ENOSPC, NO_SPACE)
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs "
                           "598") from None


def test_atomic_write_names_the_file_behind_torchs_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch, "save", _torch_save_on_a_full_disk)
    target = tmp_path / "step00.pt"
    with pytest.raises(OSError) as caught:
        atomic_write(target, lambda fh: torch.save({"a": 1}, fh))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_atomic_write_adds_the_path_to_a_bare_enospc(tmp_path) -> None:
    def full(fh: io.BufferedWriter) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "x.json", full)
    assert caught.value.filename == str(tmp_path / "x.json")


def test_a_checkpoint_on_a_full_disk_says_so_and_the_run_resumes(tmp_path, capsys, monkeypatch,
                                                                 synthetic_cache) -> None:
    config = write_config(tmp_path / "tiny.yaml")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", _torch_save_on_a_full_disk)
        status, said = cli(capsys, "run", str(config), "--out", str(out), "--no-report",
                           "--progress", "off")
    assert status == 2 and "Traceback" not in said and "inline_container" not in said
    (run_dir,) = (out / "tiny").iterdir()
    checkpoint = run_dir / "checkpoints" / "stpm" / "seed0" / "step00.pt"
    assert f"the disk is full: no space left to write {checkpoint}" in said
    assert said.count("the disk is full") == 1 and "--resume" in said
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and NO_SPACE in manifest["error"]
    assert str(checkpoint) in manifest["error"] and "inline_container" not in manifest["error"]

    status, said = cli(capsys, "run", "--resume", str(run_dir), "--no-report", "--progress",
                       "off")  # space freed
    assert status == 0, said
    status, _ = cli(capsys, "run", str(config), "--out", str(tmp_path / "ref"), "--no-report",
                    "--progress", "off")
    (reference,) = (tmp_path / "ref" / "tiny").iterdir()
    got = pd.read_csv(run_dir / "records.csv", dtype=str).drop(columns="run_id")
    want = pd.read_csv(reference / "records.csv", dtype=str).drop(columns="run_id")
    pd.testing.assert_frame_equal(got, want)


def test_a_full_disk_before_the_start_leaves_no_run_folder(tmp_path, capsys, monkeypatch,
                                                           synthetic_cache) -> None:
    from cl_bench.run import experiment

    def full(path, text):
        raise OSError(errno.ENOSPC, NO_SPACE, str(path))

    monkeypatch.setattr(experiment, "atomic_write_text", full)
    config = write_config(tmp_path / "tiny.yaml")
    status, said = cli(capsys, "run", str(config), "--out", str(tmp_path / "out"),
                       "--no-report", "--progress", "off")
    assert status == 2 and "Traceback" not in said
    assert said.count("the disk is full") == 1 and "config.yaml" in said
    assert "--out DIR" in said and "was removed" in said
    assert list((tmp_path / "out" / "tiny").iterdir()) == []
