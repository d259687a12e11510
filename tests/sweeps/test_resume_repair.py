"""sweeps.resume_repair: a killed sweep's files made consistent with Ray's saved state."""

from __future__ import annotations

import json
from pathlib import Path

from sweeps.resume_repair import (
    refill_missing_checkpoints,
    repair_result_files,
    replacement_for,
    stored_checkpoints,
)


def _checkpoint(trial: Path, name: str, epoch: int, payload: bytes = b"weights") -> Path:
    folder = trial / name
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(payload + str(epoch).encode())
    (folder / "meta.json").write_text(json.dumps({"epoch": epoch, "val_miou": 0.1}))
    return folder


def _rows(trial: Path, epochs: int) -> None:
    trial.mkdir(parents=True, exist_ok=True)
    (trial / "result.json").write_text("".join(json.dumps({"epoch": e}) + "\n"
                                               for e in range(1, epochs + 1)))


def _ray_state(experiment: Path, trials: dict[str, tuple[str, list[tuple[str, int]] | None]]):
    """An experiment_state file written with Ray's own serializers: folder -> (status,
    [(checkpoint folder, epoch)] registered in that order, or None: no checkpoint yet)."""
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult
    from ray.tune import Checkpoint, CheckpointConfig
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    data = []
    for folder, (status, registered) in trials.items():
        metadata = _TrainingRunMetadata()
        if registered is not None:
            # No num_to_keep: registering must not delete anything (the test sets the disk).
            manager = _CheckpointManager(CheckpointConfig(checkpoint_score_attribute="val_miou",
                                                          checkpoint_score_order="max"))
            for name, epoch in registered:
                checkpoint = Checkpoint(str(experiment / folder / name))
                manager.register_checkpoint(
                    _TrainingResult(checkpoint=checkpoint, metrics={"val_miou": epoch / 10}))
            metadata.checkpoint_manager = manager
        trial = json.dumps({"relative_logdir": folder, "status": status})
        data.append([trial, metadata.get_json_state()])
    experiment.mkdir(parents=True, exist_ok=True)
    (experiment / "experiment_state-2026-11-25_01-00-00.json").write_text(
        json.dumps({"trial_data": data}))


def test_a_partial_last_result_line_is_cut_and_named(tmp_path):
    _rows(tmp_path / "t1", 2)
    result = tmp_path / "t1" / "result.json"
    result.write_text(result.read_text() + '{"epoch": 3, "val_')
    _rows(tmp_path / "t2", 2)
    notes = repair_result_files(tmp_path)
    assert [json.loads(line)["epoch"] for line in result.read_text().splitlines()] == [1, 2]
    assert len(notes) == 1 and str(result) in notes[0]


def test_stored_checkpoints_leave_out_folders_cut_short(tmp_path):
    _checkpoint(tmp_path, "checkpoint_000003", 4)
    _checkpoint(tmp_path, "checkpoint_000000", 1)
    no_file = _checkpoint(tmp_path, "checkpoint_000004", 5)
    (no_file / "checkpoint.pt").unlink()
    bad_meta = _checkpoint(tmp_path, "checkpoint_000005", 6)
    (bad_meta / "meta.json").write_text('{"epo')
    assert [(c.folder.name, c.epoch) for c in stored_checkpoints(tmp_path)] == [
        ("checkpoint_000000", 1), ("checkpoint_000003", 4)]


def test_replacement_is_the_newest_checkpoint_whose_epoch_is_recorded(tmp_path):
    for name, epoch in (("checkpoint_000001", 2), ("checkpoint_000003", 4),
                        ("checkpoint_000004", 5)):
        _checkpoint(tmp_path, name, epoch)
    _rows(tmp_path, 4)  # epoch 5 was checkpointed, its row not written before the kill
    assert replacement_for(tmp_path).epoch == 4
    _rows(tmp_path, 5)
    assert replacement_for(tmp_path).epoch == 5
    _rows(tmp_path, 1)  # nothing recorded that far: the oldest, to lose the fewest rows
    assert replacement_for(tmp_path).epoch == 2
    assert replacement_for(tmp_path / "empty") is None


def test_the_checkpoint_rays_state_names_is_refilled_from_the_newest_recorded_one(tmp_path):
    exp = tmp_path / "exp"
    trial = exp / "t_unfinished"
    # Ray's saved state: best checkpoint_000000, latest checkpoint_000001 (epoch 2). Then Ray
    # registered checkpoint_000002 (epoch 3), deleted 000001, and the driver died before it
    # saved its state again.
    _ray_state(exp, {"t_unfinished": ("RUNNING", [("checkpoint_000000", 5),
                                                  ("checkpoint_000001", 2)]),
                     "t_done": ("TERMINATED", [("checkpoint_000007", 8)])})
    _checkpoint(trial, "checkpoint_000000", 1)
    newest = _checkpoint(trial, "checkpoint_000002", 3)
    _rows(trial, 3)
    (exp / "t_done").mkdir()

    notes = refill_missing_checkpoints(exp)

    filled = trial / "checkpoint_000001"
    assert (filled / "checkpoint.pt").read_bytes() == (newest / "checkpoint.pt").read_bytes()
    assert json.loads((filled / "meta.json").read_text())["epoch"] == 3
    assert len(notes) == 1
    assert "checkpoint_000001" in notes[0] and "checkpoint_000002 (epoch 3)" in notes[0]
    assert "not recorded" not in notes[0]
    assert not list(exp.rglob("*.partial"))  # the copy was renamed into place
    # A finished trial is not run again: what its state names is left alone.
    assert not (exp / "t_done" / "checkpoint_000007").exists()
    assert refill_missing_checkpoints(exp) == []  # nothing left to repair


def test_a_refill_from_an_unrecorded_epoch_says_which_epochs_the_history_lacks(tmp_path):
    exp = tmp_path / "exp"
    trial = exp / "t"
    _ray_state(exp, {"t": ("RUNNING", [("checkpoint_000001", 2)])})
    _checkpoint(trial, "checkpoint_000003", 4)
    _rows(trial, 2)
    (note,) = refill_missing_checkpoints(exp)
    assert "epochs 3-4 trained but not recorded" in note, note


def test_a_trial_with_no_stored_checkpoint_is_named_not_guessed(tmp_path):
    exp = tmp_path / "exp"
    _ray_state(exp, {"t": ("ERROR", [("checkpoint_000001", 2)]),
                     "fresh": ("PENDING", None)})
    _rows(exp / "t", 2)
    (exp / "fresh").mkdir()
    (note,) = refill_missing_checkpoints(exp)
    assert str(exp / "t") in note and "no checkpoint of this trial is stored" in note
    assert not (exp / "t" / "checkpoint_000001").exists()


def test_an_unreadable_state_skips_the_check_with_a_note(tmp_path):
    (tmp_path / "experiment_state-2026-11-25_01-00-00.json").write_text("{not json")
    (note,) = refill_missing_checkpoints(tmp_path)
    assert "could not be read" in note and "resuming without that check" in note
    assert refill_missing_checkpoints(tmp_path / "no_state") == []
