"""sweeps.resume_repair: a killed sweep's files made consistent with Ray's saved state."""

from __future__ import annotations

import json
from pathlib import Path

from ray_state_helpers import StateTrial, write_state

from sweeps.resume_repair import (
    refill_missing_checkpoints,
    repair_result_files,
    restore_unrecorded_rows,
    stored_checkpoints,
)


def _checkpoint(trial: Path, name: str, epoch: int, with_row: bool = True) -> Path:
    """A checkpoint folder as sweeps.trainable.TuneReporter writes it (meta.json carries the
    reported row; ``with_row=False``: as written before it did)."""
    folder = trial / name
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"weights of epoch %d" % epoch)
    meta = {"epoch": epoch, "val_miou": epoch / 10, "point": "p"}
    if with_row:
        meta["row"] = {"epoch": epoch, "val_miou": epoch / 10, "point": "p",
                       "val_confusion": [[epoch, 0], [0, 1]]}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def _stored_epochs(trial: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (trial / "result.json").read_text().splitlines()]


def _rows(trial: Path, epochs: int) -> None:
    trial.mkdir(parents=True, exist_ok=True)
    (trial / "result.json").write_text("".join(json.dumps({"epoch": e}) + "\n"
                                               for e in range(1, epochs + 1)))


def _ray_state(experiment: Path, trials: dict[str, tuple[str, list[tuple[str, int]] | None]]):
    """Ray's saved state, written by Ray's own code: folder -> (status, [(checkpoint folder,
    epoch)] registered in that order, or None: no checkpoint yet). Trial ids are Optuna's kind
    (8 hex digits) and folders have any name: repair goes by what the state records."""
    write_state(experiment, [StateTrial(f"{i:08x}", folder, status, checkpoints=registered)
                             for i, (folder, (status, registered)) in enumerate(trials.items())])


def _killed_trial(tmp_path: Path, named: tuple[str, int], stored: dict[str, int],
                  recorded: int) -> tuple[Path, Path]:
    """One RUNNING trial "t": Ray's state names checkpoint ``named`` (folder, epoch); the disk
    holds the checkpoints ``stored`` (folder -> epoch) and result.json rows 1..recorded."""
    exp = tmp_path / "exp"
    _ray_state(exp, {"t": ("RUNNING", [named])})
    for folder, epoch in stored.items():
        _checkpoint(exp / "t", folder, epoch)
    _rows(exp / "t", recorded)
    return exp, exp / "t"


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


def test_rows_a_kill_kept_out_of_result_json_are_put_back_from_the_checkpoints(tmp_path):
    _checkpoint(tmp_path, "checkpoint_000001", 2)  # the best, recorded
    _checkpoint(tmp_path, "checkpoint_000004", 5)
    _checkpoint(tmp_path, "checkpoint_000005", 6, with_row=False)
    _rows(tmp_path, 3)  # epochs 4-6 trained, their rows still in Ray's staging folder
    restored, lost = restore_unrecorded_rows(tmp_path, stored_checkpoints(tmp_path), 6)
    assert (restored, lost) == ([5], [4, 6])
    assert _stored_epochs(tmp_path) == [1, 2, 3, 5]
    row = json.loads((tmp_path / "result.json").read_text().splitlines()[-1])
    assert row["val_confusion"] == [[5, 0], [0, 1]] and row["restored_from_checkpoint"] is True
    # nothing after the last row
    assert restore_unrecorded_rows(tmp_path, stored_checkpoints(tmp_path), 5) == ([], [])


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
    assert "not recorded" not in notes[0] and "put back" not in notes[0]
    assert _stored_epochs(trial) == [1, 2, 3]
    assert not list(exp.rglob("*.partial"))  # the copy was renamed into place
    # A finished trial is not run again: what its state names is left alone.
    assert not (exp / "t_done" / "checkpoint_000007").exists()
    assert refill_missing_checkpoints(exp) == []  # nothing left to repair


def test_the_refill_is_the_newest_checkpoint_and_its_unrecorded_rows_go_back(tmp_path):
    # The kill as it happens: the state names checkpoint_000001 (epoch 2, the latest it saw; it
    # was also the best); Ray registered checkpoint_000002 (epoch 3) and deleted 000001; the
    # worker had already written checkpoint_000003 (epoch 4); result.json on storage stops at 2.
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000001", 2),
                               {"checkpoint_000002": 3, "checkpoint_000003": 4}, recorded=2)
    (note,) = refill_missing_checkpoints(exp)
    filled, newest = trial / "checkpoint_000001", trial / "checkpoint_000003"
    assert (filled / "checkpoint.pt").read_bytes() == (newest / "checkpoint.pt").read_bytes()
    assert _stored_epochs(trial) == [1, 2, 3, 4]  # continues at 5: every epoch once
    assert "checkpoint_000003 (epoch 4)" in note and "epoch(s) 3, 4 put back" in note, note


def test_epochs_whose_rows_are_gone_with_their_checkpoints_are_named(tmp_path):
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000001", 2), {"checkpoint_000003": 4},
                               recorded=2)
    (note,) = refill_missing_checkpoints(exp)
    assert "epoch(s) 4 put back" in note and "epoch(s) 3 trained but not recorded" in note, note
    assert _stored_epochs(trial) == [1, 2, 4]


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


def test_a_resume_from_an_existing_checkpoint_gets_its_missing_row_back(tmp_path):
    # The state and result.json reach storage in one copy that a kill can cut: the state
    # names checkpoint_000002 (epoch 3), result.json stops at epoch 2.
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000002", 3), {"checkpoint_000002": 3},
                               recorded=2)
    (note,) = refill_missing_checkpoints(exp)
    assert "resumes from checkpoint_000002 (epoch 3)" in note and "epoch(s) 3 put back" in note
    assert _stored_epochs(trial) == [1, 2, 3]
    assert not (trial / "checkpoint_000001").exists()
    assert refill_missing_checkpoints(exp) == []  # a consistent sweep: nothing touched


def test_rows_go_back_only_up_to_the_checkpoint_ray_resumes_from(tmp_path):
    # checkpoint_000003 (epoch 4) was written by the worker but never registered: Ray trains
    # epoch 4 again after the resume, so its row must not be put back (it would be there twice).
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000002", 3),
                               {"checkpoint_000002": 3, "checkpoint_000003": 4}, recorded=2)
    (note,) = refill_missing_checkpoints(exp)
    assert _stored_epochs(trial) == [1, 2, 3], note


def test_a_named_folder_left_half_deleted_is_refilled_whole(tmp_path):
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000001", 2), {"checkpoint_000002": 3},
                               recorded=3)
    (trial / "checkpoint_000001").mkdir()  # Ray was deleting it when the kill came
    (note,) = refill_missing_checkpoints(exp)
    assert "checkpoint_000001, named in Ray's saved state, was missing" in note
    assert sorted(p.name for p in (trial / "checkpoint_000001").iterdir()) == [
        "checkpoint.pt", "meta.json"]
    assert not list(trial.glob(".*partial"))


def test_a_row_put_back_keeps_the_trials_id(tmp_path):
    exp, trial = _killed_trial(tmp_path, ("checkpoint_000001", 2), {"checkpoint_000002": 3},
                               recorded=0)
    (trial / "result.json").write_text(json.dumps({"epoch": 1, "trial_id": "abc_00001"}) + "\n")
    refill_missing_checkpoints(exp)
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 3]  # epoch 2's row went with its checkpoint
    assert {r.get("trial_id") for r in rows} == {"abc_00001"}
