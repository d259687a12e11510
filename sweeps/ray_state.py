"""Ray Tune's saved experiment state, read in this one module (written against Ray 2.60.0).

What it reads: ``STORAGE/NAME/experiment_state-<session>.json``, which Tune's driver rewrites
while a sweep runs (``TuneController.save_to_dir``); the newest session's file is the one
``Tuner.restore`` opens. Its ``trial_data`` holds one pair per trial:

- the trial's JSON (``Trial.get_json_state``): ``trial_id``, ``status``, ``config`` (Tune's
  config: grid point + searched values) and ``relative_logdir`` (the trial's folder, named by
  ``runner._trial_dirname`` and then made unique by Ray; None until the trial starts);
- its run metadata (``_TrainingRunMetadata``): ``num_failures``, and the checkpoint manager
  (cloudpickled) that names the checkpoint folders Tune tracks: the best ones and the latest,
  which a resume restores from.

It also reads private attributes of Ray objects: ``MLflowLoggerCallback._trial_runs``, the
MLflow run of each trial, which a resumed sweep hands back to its trials
(``mlflow_trial_runs``); ASHA's ``_Bracket`` and ``ASHAScheduler._brackets``, through which
``bench/asha.py`` replays recorded curves (``asha_bracket``, ``asha_rungs``); and the inside of
Ray's W&B callback (``wandb_actor``, ``wandb_queue``, ``collect_wandb_runs``): each trial's W&B
run lives in a Ray actor of class ``WandbLoggerCallback._logger_actor_cls`` (Ray's
``_WandbLoggingActor``), fed through the trial's queue in ``_trial_queues`` with
``_QueueItem``s (RESULT, CHECKPOINT, END), and ``_cleanup_logging_actors`` waits for the actors
to finish. sweeps/tune_callbacks.py subclasses that actor to end a run with its trial's status
and ends the runs a Ctrl-C left open, which Ray never ends (it waits ``upload_timeout``, 30
minutes, for them); no public API says how a run ended or bounds that wait.

Why not a public API: ``tune.ExperimentAnalysis`` and ``Tuner.restore(...).get_results()``
import Ray and unpickle the whole state (the latter ``tuner.pkl`` too); the analysis loader
reads a running or copied sweep without Ray, from JSON alone (``read_trials``). The folders a
checkpoint manager tracks are public nowhere (``ExperimentAnalysis`` reaches them through the
same private attributes), and resume repair needs them before ``Tuner.restore`` runs, since it
is the restore that fails.

The bug resume repair works around (``sweeps/resume_repair.py``): Tune's checkpoint manager
deletes a trial's old checkpoint (``num_to_keep``) before the driver saves the experiment
state, so a driver killed in between leaves a state naming a deleted folder, and the restore
fails that trial on every retry. Ray issue 27790; PR 29099 added a fallback to the latest
available checkpoint, which Ray 2.60 no longer has; PR 51515 was closed unmerged; Ray Train
V2's checkpoint manager saves its state before it deletes, but Tune's does not.

Pinned: ``ray[default,tune]==2.60.0`` in pyproject.toml and cluster.yaml;
tests/sweeps/test_ray_state.py (the W&B callback's inside: tests/sweeps/test_tracking.py) fails
naming this module when an upgrade changes what it reads. The JSON reads need no Ray import (the
loader stays Ray-free); the functions that need Ray's private names import them lazily.

The project's other private imports, each where no public API does the job:

- torchvision's ``models._utils.IntermediateLayerGetter`` (segmodels/models/backbones.py): a
  backbone's named stages;
- Ray's ``train.constants._get_ray_train_session_dir`` (``driver_staging_folder``, here):
  where the driver stages Tune's state, put back into a storage that filled up;
- Ray's ``node:__internal_head__`` resource (sweeps/resources.py): not counted as a node;
- in tests only: ``ray.autoscaler._private.util`` (tests/e2e/test_cluster.py: cluster.yaml
  validated as ``ray up`` does), ``OptunaSearch._points_to_evaluate``
  (tests/sweeps/test_search.py), ``ray.train._internal.checkpoint_manager`` and
  ``ray.tune.experiment.trial.Trial`` (tests/helpers/ray_state_helpers.py: state written as Ray
  does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmodels.errors import SegsweepError

RAY_VERSION = "2.60.0"  # the version this module was checked against (pyproject.toml pins it)
STATE_PATTERN = "experiment_state-*.json"  # TuneController.CKPT_FILE_TMPL with "*"
TUNER_FILE = "tuner.pkl"  # the pickled Tuner that Tuner.restore reads


class RayStateError(SegsweepError, ValueError):
    """Ray's saved experiment state cannot be read; the message names the file."""


@dataclass(frozen=True)
class RayTrial:
    """One trial as Tune's saved state records it."""

    trial_id: str
    status: str | None  # PENDING, RUNNING, PAUSED, TERMINATED, ERROR
    config: dict[str, Any]  # Tune's config: {"point": label, + searched values}
    folder: str | None  # relative_logdir: its folder in the experiment; None until it starts
    num_failures: int
    metadata_json: str = field(repr=False)  # the run metadata, for checkpoint_folders


def newest_state_file(experiment: Path) -> Path | None:
    """The state file Tune restores from: the newest session's, by the time in its name
    (as Ray's ``_find_newest_experiment_checkpoint`` picks it; modification times are
    reordered by copies and syncs)."""
    states = sorted(Path(experiment).glob(STATE_PATTERN), key=lambda p: p.name)
    return states[-1] if states else None


def tune_saved(experiment: Path) -> bool:
    """Tune saved this sweep at least once: both files ``Tuner.restore`` needs (``tuner.pkl``
    and a state file) are there. A sweep stopped before that (Ctrl-C in its first seconds, a
    tracker or scheduler that failed to set up) has nothing to resume."""
    return (Path(experiment) / TUNER_FILE).is_file() and newest_state_file(experiment) is not None


def read_trials(experiment: Path) -> list[RayTrial]:
    """Every trial of the newest saved state, from its JSON alone (no Ray import); [] when
    Ray has saved none yet. Raises ``RayStateError`` naming a file it cannot parse."""
    state = newest_state_file(experiment)
    if state is None:
        return []
    try:
        entries = json.loads(state.read_text())["trial_data"]
        return [_trial(*entry) for entry in entries]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise RayStateError(f"{state}: not a Ray Tune experiment state this version reads "
                            f"({type(exc).__name__}: {exc})") from None


def check_readable(experiment: Path) -> None:
    """Raise ``RayStateError`` when the state Tune would restore from is not whole JSON (cut
    short by a full disk): Tune's restore then silently starts every trial from scratch."""
    state = newest_state_file(experiment)
    if state is None:
        return
    try:
        json.loads(state.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RayStateError(f"{state}: Ray Tune's saved state is damaged "
                            f"({type(exc).__name__}: {exc})") from None


def driver_staging_folder(name: str) -> Path | None:
    """Where this process's Tune driver wrote sweep ``name``'s state before copying it to
    storage (``StorageContext.experiment_driver_staging_path``: Ray's session folder /
    artifacts / <start time> / NAME / driver_artifacts), the newest; None when Ray is not
    running here or wrote none. Whole even when the copy in a full storage was cut short."""
    import glob

    import ray
    from ray.train.constants import _get_ray_train_session_dir

    if not ray.is_initialized():
        return None
    found = sorted(Path(_get_ray_train_session_dir()).glob(
        f"*/{glob.escape(name)}/driver_artifacts"), key=lambda p: p.parent.parent.name)
    return found[-1] if found else None


def _trial(trial_json: str, metadata_json: str) -> RayTrial:
    trial, metadata = json.loads(trial_json), json.loads(metadata_json)
    return RayTrial(trial_id=str(trial["trial_id"]), status=trial.get("status"),
                    config=trial.get("config") or {}, folder=trial.get("relative_logdir"),
                    num_failures=int(metadata.get("num_failures") or 0),
                    metadata_json=metadata_json)


def checkpoint_folders(trial: RayTrial) -> tuple[str | None, set[str]]:
    """(the latest checkpoint folder: the one a resume restores from, None before the first;
    every folder Tune tracks: the best ones and the latest, which its clean-up opens later), by
    folder name. Unpickles Ray's checkpoint manager: needs Ray."""
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    manager = _TrainingRunMetadata.from_json_state(trial.metadata_json).checkpoint_manager
    if manager is None:
        return None, set()
    latest = manager.latest_checkpoint_result
    results = [r for r in [*manager.best_checkpoint_results, latest] if r is not None]
    return (latest and Path(latest.checkpoint.path).name,
            {Path(r.checkpoint.path).name for r in results})


def mlflow_trial_runs(callback: Any) -> dict[Any, str]:
    """Ray's ``MLflowLoggerCallback`` keeps its MLflow run per trial in the private
    ``_trial_runs`` (Trial -> run id; set up when the sweep starts). A resumed sweep gives each
    trial back its own run through it (sweeps/tune_callbacks.py); no public API does."""
    return callback.__dict__.setdefault("_trial_runs", {})


def wandb_actor() -> tuple[type, Any]:
    """(Ray's ``_WandbLoggingActor``: the actor that owns one trial's W&B run, to subclass as
    ``WandbLoggerCallback._logger_actor_cls``; ``_QueueItem``: what its queue carries, RESULT,
    CHECKPOINT and END)."""
    from ray.air.integrations.wandb import _QueueItem, _WandbLoggingActor

    return _WandbLoggingActor, _QueueItem


def wandb_queue(callback: Any, trial: Any) -> Any | None:
    """The queue to ``trial``'s W&B actor (``_trial_queues``); None when it has none (never
    started, or already collected)."""
    return callback._trial_queues.get(trial)


def collect_wandb_runs(callback: Any, timeout: float, kill_late: bool) -> None:
    """Wait up to ``timeout`` s for the W&B actors to finish their runs, remove those that did
    and, with ``kill_late``, kill the others (``_cleanup_logging_actors``)."""
    callback._cleanup_logging_actors(timeout=timeout, kill_on_timeout=kill_late)


def asha_bracket(grace_period: int, max_t: int, reduction_factor: float) -> Any:
    """A fresh bracket of Ray's ASHA (private ``_Bracket``): ``bench/asha.py`` replays recorded
    curves through exactly the decisions the scheduler makes (``on_result`` -> CONTINUE/STOP)."""
    from ray.tune.schedulers.async_hyperband import _Bracket

    return _Bracket(grace_period, max_t, reduction_factor, 0)


def asha_rungs(scheduler: Any) -> list[float]:
    """The epochs at which an ``ASHAScheduler``'s (first) bracket decides, lowest first (its
    private ``_brackets[0]._rungs``: (milestone, recorded) pairs)."""
    return sorted(float(rung[0]) for rung in scheduler._brackets[0]._rungs)
