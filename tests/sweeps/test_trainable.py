"""sweeps.trainable: where a trial writes a checkpoint before Tune copies it to storage."""

from __future__ import annotations

import pytest

from sweeps import trainable
from sweeps.storage import META_FILE


def test_checkpoints_are_staged_in_memory_only_when_it_has_room(monkeypatch, tmp_path):
    monkeypatch.setattr(trainable, "_SHM", str(tmp_path))
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1)
    assert trainable.scratch_dir() == str(tmp_path)
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1 << 60)  # a 64 MB container /dev/shm
    assert trainable.scratch_dir() is None
    monkeypatch.setattr(trainable, "_SHM", str(tmp_path / "missing"))
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1)
    assert trainable.scratch_dir() is None


def test_each_checkpoint_carries_the_row_reported_with_it(monkeypatch, tmp_path):
    # What a resume puts back into result.json when a kill kept the row out of it.
    import json
    import platform
    from types import SimpleNamespace

    import numpy as np
    import torch

    monkeypatch.setattr(trainable.ray, "get_runtime_context",
                        lambda: SimpleNamespace(get_node_id=lambda: "node-1"))
    seen = {}

    def report(metrics, checkpoint=None):
        folder = checkpoint.to_directory(str(tmp_path / "persisted"))
        seen["metrics"] = metrics
        seen["meta"] = json.loads((tmp_path / "persisted" / META_FILE).read_text())
        seen["files"] = sorted(p.name for p in (tmp_path / "persisted").iterdir())
        return folder

    monkeypatch.setattr(trainable.tune, "report", report)
    row = {"epoch": 3, "val_miou": np.float32(0.25), "val_confusion": [[1, 0], [0, 2]],
           "lr": np.float64(0.001)}
    trainable.TuneReporter("unet/aug").report(row, {"epoch": 3, "weights": torch.zeros(2)})
    meta = seen["meta"]
    assert (meta["epoch"], meta["point"]) == (3, "unet/aug")
    assert meta["row"] == {"epoch": 3, "val_miou": 0.25, "val_confusion": [[1, 0], [0, 2]],
                           "lr": 0.001, "point": "unet/aug", "node_id": "node-1",
                           "hostname": platform.node()}
    assert seen["files"] == ["checkpoint.pt", "meta.json"]


def test_staged_checkpoints_of_killed_trials_are_removed_and_live_ones_kept(tmp_path):
    # A trial SIGKILLed while reporting leaves its staged checkpoint; in /dev/shm that is
    # memory held until reboot. The next trial on the node removes it.
    import os
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = tmp_path / f"segsweep-ckpt-{finished.pid}-x1"
    live = tmp_path / f"segsweep-ckpt-{os.getpid()}-x2"
    unnamed = tmp_path / "segsweep-ckpt-2jjn7hco"  # no writer pid in the name: not ours to judge
    for folder in (dead, live, unnamed):
        folder.mkdir()
        (folder / "checkpoint.pt").write_bytes(b"x")
    (tmp_path / f"segsweep-ckpt-{finished.pid}-file").write_text("not a folder")
    assert trainable.remove_orphaned_staging([str(tmp_path)]) == [dead]
    assert not dead.exists() and live.is_dir() and unnamed.is_dir()
    assert trainable.remove_orphaned_staging([str(tmp_path / "missing")]) == []


class _ModelBuilt(Exception):
    """Raised where the trial builds its model: everything before it has run."""


def _build_model(*args, **kwargs):
    raise _ModelBuilt


@pytest.mark.parametrize("granted, cuda, capped", [
    ({"CPU": 2, "GPU": 0.5}, True, [0.5]),  # shares a GPU: capped to its share
    ({"CPU": 2, "GPU": 1}, True, []),  # a whole GPU: nothing to cap
    ({"CPU": 2, "GPU": 0.5}, False, []),  # no CUDA: the share means nothing
])
def test_a_trial_sharing_a_gpu_caps_its_memory_to_the_share_ray_gave_it(
        monkeypatch, tmp_path, tiny_data, granted, cuda, capped):
    # Ray's fractional GPUs only schedule; the cap makes an OOM fail the trial that caused it.
    from types import SimpleNamespace

    import torch
    from ray.tune.execution.placement_groups import PlacementGroupFactory

    from segmodels.training import device_data, trial

    calls = []
    monkeypatch.setattr(device_data, "_process_share", 1.0)  # restored after the test
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda share, device=None: calls.append(share))
    monkeypatch.setattr(trial, "SegmentationModule", _build_model)
    monkeypatch.setattr(trainable.tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(trainable.tune, "get_context", lambda: SimpleNamespace(
        get_trial_resources=lambda: PlacementGroupFactory([granted]),
        get_trial_dir=lambda: str(tmp_path)))
    monkeypatch.setattr(trainable.ray, "get_runtime_context",
                        lambda: SimpleNamespace(get_node_id=lambda: "node-1"))
    monkeypatch.setattr(trainable, "remove_orphaned_staging", lambda folders: [])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(_ModelBuilt):
            trainable.run_trial({"point": "unet"}, data=tiny_data, fixed={},
                                points={"unet": {"model": "unet", "batch_size": 4}})
        assert torch.get_num_threads() == 2  # the trial's threads follow its CPUs
    finally:
        torch.set_num_threads(threads)
    assert calls == capped
