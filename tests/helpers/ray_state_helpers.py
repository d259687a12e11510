"""Ray Tune's experiment state written by the installed Ray's own code, without a Ray cluster:
real ``Trial`` and checkpoint-manager objects, serialized and saved by Tune's own methods, so
that what sweeps/ray_state.py parses is what this Ray writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SESSION = "2026-11-25_01-00-00"


@dataclass
class StateTrial:
    """One trial of a written state. ``checkpoints``: (folder, epoch) registered in that order
    with a checkpoint manager scoring by val mIoU = epoch / 10 and deleting nothing; None: no
    checkpoint yet."""

    trial_id: str
    folder: str | None  # relative_logdir; None: not started
    status: str = "TERMINATED"
    config: dict[str, Any] = field(default_factory=lambda: {"point": "p"})
    checkpoints: list[tuple[str, int]] | None = None
    num_failures: int = 0


def write_state(experiment: Path, trials: list[StateTrial], session: str = SESSION) -> Path:
    """``experiment_state-<session>.json`` as Tune's driver saves it; returns its path."""
    from ray.tune.execution.tune_controller import TuneController

    experiment.mkdir(parents=True, exist_ok=True)
    data = {t.trial_id: _trial(experiment, t).get_json_state() for t in trials}
    nothing = SimpleNamespace(save_to_dir=lambda *args, **kwargs: None)
    controller = SimpleNamespace(  # what TuneController.save_to_dir reads of its controller
        _get_trial_checkpoints=lambda: data, __getstate__=lambda: {}, _start_time=0.0,
        _storage=SimpleNamespace(experiment_driver_staging_path=str(experiment)),
        experiment_state_file_name=TuneController.CKPT_FILE_TMPL.format(session),
        _session_str=session, _search_alg=nothing, _callbacks=nothing)
    TuneController.save_to_dir(controller)
    return experiment / controller.experiment_state_file_name


def _trial(experiment: Path, spec: StateTrial):
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult
    from ray.tune import Checkpoint, CheckpointConfig
    from ray.tune.experiment.trial import Trial

    trial = Trial("run_trial", config=spec.config, trial_id=spec.trial_id, stub=True)
    trial.relative_logdir = spec.folder  # as Trial.init_local_path sets it when it starts
    trial.status = spec.status
    trial.run_metadata.num_failures = spec.num_failures
    if spec.checkpoints is not None:
        manager = _CheckpointManager(CheckpointConfig(checkpoint_score_attribute="val_miou",
                                                      checkpoint_score_order="max"))
        for name, epoch in spec.checkpoints:
            checkpoint = Checkpoint(str(experiment / (spec.folder or "") / name))
            manager.register_checkpoint(
                _TrainingResult(checkpoint=checkpoint, metrics={"val_miou": epoch / 10}))
        trial.run_metadata.checkpoint_manager = manager
    trial.invalidate_json_state()
    return trial


def saved_by_tune(experiment: Path, trials: list[StateTrial] | None = None) -> None:
    """What Tune's first save leaves: ``tuner.pkl`` (its content is never read here) and a
    state file; a sweep without them stopped before training and has nothing to resume."""
    from sweeps.ray_state import TUNER_FILE

    write_state(experiment, trials or [])
    (experiment / TUNER_FILE).write_bytes(b"")
