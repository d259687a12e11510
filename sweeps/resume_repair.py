"""Before a resume: make a killed sweep's stored files consistent with Ray's saved state.

A driver killed at a bad moment leaves two kinds of damage that Ray's restore does not handle:

- a partial last line in a trial's ``result.json`` (Ray appends to it on resume and would glue
  the next epoch onto the fragment);
- a checkpoint folder that Ray's saved state names but that is gone. Ray deletes a trial's
  previous checkpoint when it registers the next one and saves its experiment state a moment
  later (``num_to_keep``); a kill in between leaves a state that names the deleted folder, and
  Ray's restore then fails that trial on every retry ("Could not recover from checkpoint as it
  does not exist on storage anymore"): the trial ends as ERROR with its epochs half done.

Both are repaired on local (or shared) storage only; object storage is left as it is.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from segmodels.checkpoint import CHECKPOINT_FILE
from sweeps.trainable import META_FILE


def repair_result_files(experiment: Path) -> list[str]:
    """Cut a partial last line (a write cut short by a crash or a full disk) from each trial's
    result.json; returns one note per repaired file."""
    notes = []
    for result in sorted(experiment.glob("*/result.json")):
        data = result.read_bytes()
        if data and not data.endswith(b"\n"):
            result.write_bytes(data[: data.rfind(b"\n") + 1])
            notes.append(f"{result}: cut a partial last line before resuming")
    return notes


@dataclass(frozen=True)
class StoredCheckpoint:
    folder: Path
    epoch: int


def stored_checkpoints(trial_dir: Path) -> list[StoredCheckpoint]:
    """The trial's complete checkpoint folders (checkpoint file + meta with its epoch), oldest
    first. A folder without both is a copy cut short and is not a candidate."""
    found = []
    for folder in trial_dir.glob("checkpoint_*"):
        try:
            epoch = int(json.loads((folder / META_FILE).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (folder / CHECKPOINT_FILE).is_file():
            found.append(StoredCheckpoint(folder, epoch))
    return sorted(found, key=lambda c: (c.epoch, c.folder.name))


def last_stored_epoch(trial_dir: Path) -> int:
    """The newest epoch with a complete row in result.json (0 if none)."""
    last = 0
    try:
        lines = (trial_dir / "result.json").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        try:
            last = max(last, int(json.loads(line)["epoch"]))
        except (ValueError, KeyError, TypeError):
            continue
    return last


def replacement_for(trial_dir: Path) -> StoredCheckpoint | None:
    """The checkpoint a trial should continue from when the one Ray names is gone: the newest
    one whose epoch has its row in result.json (continuing from a later one would leave that
    epoch out of the trial's history); failing that, the oldest one stored."""
    stored = stored_checkpoints(trial_dir)
    if not stored:
        return None
    recorded = last_stored_epoch(trial_dir)
    covered = [c for c in stored if c.epoch <= recorded]
    return covered[-1] if covered else stored[0]


def named_checkpoints(experiment: Path) -> dict[str, set[str]]:
    """trial folder name -> the checkpoint folder names Ray's newest saved state tracks for it
    (the ones its restore and its later clean-up will open), for the trials a resume runs
    again (every status but TERMINATED: segsweep resumes errored trials too)."""
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
    from ray.tune.experiment.trial import _TrainingRunMetadata

    state_file = _find_newest_experiment_checkpoint(str(experiment))
    if state_file is None:
        return {}
    named: dict[str, set[str]] = {}
    for trial_json, metadata_json in json.loads(Path(state_file).read_text())["trial_data"]:
        trial = json.loads(trial_json)
        folder = trial.get("relative_logdir")
        if not folder or trial.get("status") == "TERMINATED":
            continue  # never started, or not run again
        manager = _TrainingRunMetadata.from_json_state(metadata_json).checkpoint_manager
        if manager is None:
            continue  # no checkpoint yet: Ray starts it from scratch
        results = [*manager.best_checkpoint_results, manager.latest_checkpoint_result]
        named[folder] = {Path(r.checkpoint.path).name for r in results if r is not None}
    return named


def refill_missing_checkpoints(experiment: Path) -> list[str]:
    """Copy a stored checkpoint into each folder Ray's saved state names but that is missing,
    so the trial continues from it instead of failing; returns one note per trial touched."""
    try:
        named = named_checkpoints(experiment)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
        return [f"{experiment}: Ray's saved state could not be read to check its checkpoints "
                f"({type(exc).__name__}: {exc}); resuming without that check"]
    notes = []
    for trial_name, folders in sorted(named.items()):
        trial_dir = experiment / trial_name
        if not trial_dir.is_dir():
            continue  # a deleted trial folder is the loader's to report (MISSING)
        missing = sorted(f for f in folders if not (trial_dir / f).exists())
        if not missing:
            continue
        source = replacement_for(trial_dir)
        if source is None:
            notes.append(f"{trial_dir}: Ray's saved state names {', '.join(missing)}, and no "
                         "checkpoint of this trial is stored; Ray will fail it when it resumes")
            continue
        for folder in missing:
            _copy_folder(source.folder, trial_dir / folder)
        note = (f"{trial_dir}: {', '.join(missing)}, named in Ray's saved state, was missing "
                "(a driver killed while Ray replaced a checkpoint leaves this); filled with "
                f"{source.folder.name} (epoch {source.epoch}): the trial continues from there")
        recorded = last_stored_epoch(trial_dir)
        if source.epoch > recorded:  # only when no checkpoint of a recorded epoch is left
            lost = (f"epoch {source.epoch}" if source.epoch == recorded + 1
                    else f"epochs {recorded + 1}-{source.epoch}")
            note += f"; {lost} trained but not recorded before the kill, left out of its history"
        notes.append(note)
    return notes


def _copy_folder(source: Path, target: Path) -> None:
    """Copy under a temporary name, then rename: a kill mid-copy leaves no half folder under
    the name Ray restores from."""
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    shutil.copytree(source, staging)
    staging.rename(target)
