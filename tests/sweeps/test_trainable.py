"""sweeps.trainable: where a trial writes a checkpoint before Tune copies it to storage."""

from __future__ import annotations

from sweeps import trainable


def test_checkpoints_are_staged_in_memory_only_when_it_has_room(monkeypatch, tmp_path):
    monkeypatch.setattr(trainable, "_SHM", str(tmp_path))
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1)
    assert trainable.scratch_dir() == str(tmp_path)
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1 << 60)  # a 64 MB container /dev/shm
    assert trainable.scratch_dir() is None
    monkeypatch.setattr(trainable, "_SHM", str(tmp_path / "missing"))
    monkeypatch.setattr(trainable, "_SHM_MIN_FREE", 1)
    assert trainable.scratch_dir() is None
