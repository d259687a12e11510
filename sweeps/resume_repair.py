"""Before a resume: make a killed sweep's stored files consistent with Ray's saved state.

A driver killed at a bad moment leaves damage that Ray's restore does not handle:

- a partial last line in a trial's ``result.json`` (Ray appends to it on resume and would glue
  the next epoch onto the fragment);
- a checkpoint folder that Ray's saved state names but that is gone. Ray deletes a trial's
  previous checkpoint when it registers the next one and saves its experiment state (and copies
  result.json from its staging folder to storage) a moment later (``num_to_keep``); a kill in
  between leaves a state that names the deleted folder, a newer checkpoint whose row is not in
  result.json, and a restore that fails that trial on every retry ("Could not recover from
  checkpoint as it does not exist on storage anymore"): the trial ends as ERROR, half done.
  The newest stored checkpoint fills the named folder and its row goes back into result.json.
  (Ray still scores that folder by the epoch it named, so it may later delete it as worse than
  it is; the loader then takes the best checkpoint left on disk.)
- the state copied to storage without the result.json that goes with it (one copy, not
  atomic): the epoch Ray resumes after has no row. It goes back from its checkpoint too.

All are repaired on local (or shared) storage only; object storage is left as it is. Ray's
saved state is read through ``sweeps.ray_state``, which also names the upstream bug.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from sweeps import ray_state
from sweeps.storage import CHECKPOINT_FILE, CHECKPOINT_PREFIX, META_FILE, RESULT_FILE


def repair_result_files(experiment: Path) -> list[str]:
    """Cut a partial last line (a write cut short by a crash or a full disk) from each trial's
    result.json; returns one note per repaired file."""
    notes = []
    for result in sorted(experiment.glob(f"*/{RESULT_FILE}")):
        data = result.read_bytes()
        if data and not data.endswith(b"\n"):
            result.write_bytes(data[: data.rfind(b"\n") + 1])
            notes.append(f"{result}: cut a partial last line before resuming")
    return notes


@dataclass(frozen=True)
class StoredCheckpoint:
    folder: Path
    epoch: int
    row: dict | None  # the row reported with it (meta.json), None if it carries none
    val_miou: float = float("nan")  # its epoch's val mIoU, NaN where nothing recorded it


def stored_checkpoints(trial_dir: Path,
                       results: list[dict] | None = None) -> list[StoredCheckpoint]:
    """The trial's complete checkpoint folders (checkpoint file + meta with its epoch), oldest
    first: the one reader of a trial's kept checkpoints (resume repair, the loader, the
    trackers' artifacts). A folder without both is a copy cut short and is not a candidate;
    with ``results`` (its result.json rows), a folder whose meta.json is lost (sweeps stored
    before it existed) is known by the row that names it."""
    reported = {r.get("checkpoint_dir_name"): r for r in results or []}
    found = []
    for folder in trial_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        try:
            meta = json.loads((folder / META_FILE).read_text())
            epoch = int(meta["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            meta = reported.get(folder.name)
            if not isinstance(meta, dict) or "epoch" not in meta:
                continue
            epoch = int(meta["epoch"])
        if (folder / CHECKPOINT_FILE).is_file():
            row = meta.get("row")
            row = row if isinstance(row, dict) and row.get("epoch") == epoch else None
            score = meta.get("val_miou")
            score = float(score) if isinstance(score, int | float) else float("nan")
            found.append(StoredCheckpoint(folder, epoch, row, score))
    return sorted(found, key=lambda c: (c.epoch, c.folder.name))


def best_checkpoint(trial_dir: Path, best_epoch: int | None,
                    results: list[dict] | None = None) -> StoredCheckpoint | None:
    """The trial's kept checkpoint of its best epoch (``best_epoch`` of its last row); else
    the kept one with the highest val mIoU, the later on ties (Ray may have deleted the best
    epoch's folder, see above); None without one."""
    stored = stored_checkpoints(trial_dir, results)
    if not stored:
        return None
    by_epoch = {c.epoch: c for c in stored}
    if best_epoch in by_epoch:
        return by_epoch[best_epoch]
    return max(stored, key=lambda c: (c.val_miou if math.isfinite(c.val_miou) else -1.0,
                                      c.epoch))


def _recorded_rows(trial_dir: Path) -> list[dict]:
    """result.json's complete rows that name their epoch."""
    try:
        lines = (trial_dir / RESULT_FILE).read_text(errors="replace").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
            row["epoch"] = int(row["epoch"])
        except (ValueError, KeyError, TypeError):
            continue
        rows.append(row)
    return rows


def restore_unrecorded_rows(trial_dir: Path, stored: list[StoredCheckpoint],
                            upto: int) -> tuple[list[int], list[int]]:
    """Append to result.json the rows of epochs after its last one, up to ``upto``, from the
    ``stored`` checkpoints that carry them. Ray's driver writes result.json to a staging folder
    and copies it to storage with its state, while workers write checkpoints to storage at
    once: a kill in between leaves checkpoints of epochs that result.json lacks. Returns (epochs
    put back, epochs with no stored row)."""
    recorded = _recorded_rows(trial_dir)
    last = max((r["epoch"] for r in recorded), default=0)
    rows = {c.epoch: c.row for c in stored if c.row}
    restored = [e for e in range(last + 1, upto + 1) if e in rows]
    if restored:
        same_trial = {k: v for k, v in recorded[-1].items() if k == "trial_id"} if recorded else {}
        with open(trial_dir / RESULT_FILE, "a") as f:
            for epoch in restored:
                row = {**same_trial, **rows[epoch], "restored_from_checkpoint": True}
                f.write(json.dumps(row) + "\n")
    return restored, [e for e in range(last + 1, upto + 1) if e not in rows]


def named_checkpoints(experiment: Path) -> dict[str, tuple[str | None, set[str]]]:
    """trial folder name -> (the latest checkpoint folder Ray's newest saved state names for it:
    the one its restore opens; every folder it tracks: the ones its clean-up opens later), for
    the trials a resume runs again (every status but TERMINATED: segsweep resumes errored
    trials too) that have a checkpoint."""
    named = {}
    for trial in ray_state.read_trials(experiment):
        if not trial.folder or trial.status == "TERMINATED":
            continue  # never started, or not run again
        latest, folders = ray_state.checkpoint_folders(trial)
        if folders:  # none: no checkpoint yet, Ray starts it from scratch
            named[trial.folder] = (latest, folders)
    return named


def refill_missing_checkpoints(experiment: Path) -> list[str]:
    """Copy the trial's newest stored checkpoint into each folder Ray's saved state names but
    that is missing, and put back the rows of the epochs it trained that result.json lacks, so
    the trial continues after its newest epoch instead of failing; one note per trial touched."""
    try:
        named = named_checkpoints(experiment)
    except Exception as exc:  # noqa: BLE001 - a best-effort check; Ray reports a broken state
        return [f"{experiment}: Ray's saved state could not be read to check its checkpoints "
                f"({type(exc).__name__}: {exc}); resuming without that check"]
    notes = []
    for trial_name, (latest, folders) in sorted(named.items()):
        trial_dir = experiment / trial_name
        if not trial_dir.is_dir():
            continue  # a deleted trial folder is the loader's to report (MISSING)
        stored = stored_checkpoints(trial_dir)
        complete = {c.folder.name for c in stored}
        # A folder Ray was deleting when the kill came can be left empty or half emptied.
        missing = sorted(f for f in folders if f not in complete)
        if missing:
            if not stored:
                notes.append(f"{trial_dir}: Ray's saved state names {', '.join(missing)}, and "
                             "no checkpoint of this trial is stored; Ray will fail it when it "
                             "resumes")
                continue
            source = stored[-1]
            for folder in missing:
                _copy_folder(source.folder, trial_dir / folder)
            note = (f"{trial_dir}: {', '.join(missing)}, named in Ray's saved state, was "
                    "missing (a driver killed while Ray replaced a checkpoint leaves this); "
                    f"filled with {source.folder.name} (epoch {source.epoch}): the trial "
                    "continues from there")
        else:
            # Ray resumes from its latest; a kill while Ray copied its state and result.json
            # to storage (not atomic) can leave that epoch's row behind.
            source = next((c for c in stored if c.folder.name == latest), None)
            if source is None:
                continue
            note = f"{trial_dir}: resumes from {latest} (epoch {source.epoch})"
        restored, lost = restore_unrecorded_rows(trial_dir, stored, source.epoch)
        if not missing and not restored and not lost:
            continue
        if restored:
            note += f"; the row of epoch(s) {_epochs(restored)} put back from its checkpoint"
        if lost:
            note += f"; epoch(s) {_epochs(lost)} trained but not recorded, left out of its history"
        notes.append(note)
    return notes


def _epochs(epochs: list[int]) -> str:
    return ", ".join(str(e) for e in epochs)


def _copy_folder(source: Path, target: Path) -> None:
    """Copy under a temporary name, then rename: a kill mid-copy leaves no half folder under
    the name Ray restores from (and a failed copy, e.g. a full disk, leaves nothing)."""
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        shutil.copytree(source, staging)
        shutil.rmtree(target, ignore_errors=True)  # what a cut deletion left of it
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
