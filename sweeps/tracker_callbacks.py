"""The MLflow and W&B callbacks of a sweep (``sweeps.tune_callbacks`` says what they log and
why): a run per trial with its resolved settings, the sweep's tags, every epoch's metrics, the
best checkpoint as artifact, and an end that says how the trial ended. Imports MLflow's and
W&B's Ray integrations, so ``sweeps.tracking`` loads it only for a sweep with a tracker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.air.constants import TRAINING_ITERATION
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback

from sweeps import tune_callbacks
from sweeps.ray_state import collect_wandb_runs, mlflow_trial_runs, wandb_actor, wandb_queue
from sweeps.resume_repair import best_checkpoint
from sweeps.tune_callbacks import (
    FAILED,
    FINISHED,
    KILLED,
    TrialSettings,
    _ShowsSettings,
    trial_metrics,
)

logger = logging.getLogger(__name__)

# W&B records an exit code only: 130 is a process stopped by SIGINT (128 + 2)
WANDB_EXIT_CODES = {FINISHED: 0, FAILED: 1, KILLED: 130}
STOP_SECONDS = 15  # after a Ctrl-C: the longest wait for the open W&B runs to finish
BEST_CHECKPOINT = "best_checkpoint"  # the artifact: the trial's best kept checkpoint folder


def _unpickle_with_defaults(callback, state: dict[str, Any]) -> None:
    """``__setstate__`` of the MLflow and W&B callbacks: one that an earlier segsweep pickled
    into a sweep's tuner.pkl lacks the attributes added since; a resume of that sweep gets
    their old behaviour (no artifacts: its MLflow experiment keeps them in ./mlruns)."""
    callback.__dict__.update({"artifacts": False, "_open": set(), **state})


def _trial_best_checkpoint(trial) -> Path | None:
    """``best_checkpoint`` of a Tune trial, read in its storage folder (``trial.path``) when
    that is on this machine's disk; None on object storage (a relative bucket path)."""
    folder = Path(trial.path)
    if not folder.is_absolute() or not folder.is_dir():
        return None
    best = best_checkpoint(folder, (trial.last_result or {}).get("best_epoch"))
    return None if best is None else best.folder


class MLflowCallback(_ShowsSettings, MLflowLoggerCallback):
    """A run per trial: its settings as params, the sweep's ``tags``, every epoch's metrics
    (``trial_metrics``), its best checkpoint as an artifact (``artifacts``) and a status that
    says how it ended. A resumed trial continues its own run: Tune saves this callback's state
    with the sweep's. Ray leaves a run that a Ctrl-C stopped RUNNING: it ends KILLED here."""

    def __init__(self, settings: TrialSettings, *, artifacts: bool = True, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.artifacts = artifacts
        self._resumed_runs: dict[str, str] = {}  # Tune's trial id -> MLflow run id
        self._open: set = set()  # trials whose run started and has not ended

    __setstate__ = _unpickle_with_defaults

    def get_state(self) -> dict[str, Any]:
        runs = {trial.trial_id: run for trial, run in mlflow_trial_runs(self).items()}
        return {"runs": {**self._resumed_runs, **runs}}

    def set_state(self, state: dict[str, Any]) -> None:
        self._resumed_runs = dict(state.get("runs", {}))

    def log_trial_start(self, trial) -> None:
        run = self._resumed_runs.get(trial.trial_id)
        runs = mlflow_trial_runs(self)
        if run is not None and trial not in runs:
            runs[trial] = run
            _mlflow_client().update_run(run, status="RUNNING")  # it ended KILLED or FAILED
        super().log_trial_start(trial)
        self._open.add(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        # Ray's logs every number of the row, one request each; this, the metrics in one
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(result[TRAINING_ITERATION])
        metrics = [Metric(key, value, now, step) for key, value in trial_metrics(result).items()]
        _mlflow_client().log_batch(mlflow_trial_runs(self)[trial], metrics=metrics)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        best = self.artifacts and _trial_best_checkpoint(trial)
        if best:
            try:
                _mlflow_client().log_artifacts(mlflow_trial_runs(self)[trial], str(best),
                                               BEST_CHECKPOINT)
            except Exception as exc:  # noqa: BLE001 - a store's many errors: the sweep goes on
                logger.warning("MLflow: the best checkpoint of %s was not stored (%s: %s)",
                               trial, type(exc).__name__, exc)
        super().log_trial_end(trial, failed=failed)  # Ray's: FINISHED, or FAILED
        self._open.discard(trial)

    def on_experiment_end(self, trials, **info) -> None:
        runs = mlflow_trial_runs(self)
        for trial in self._open:
            _mlflow_client().set_terminated(runs[trial], status=KILLED)
        self._open.clear()
        super().on_experiment_end(trials, **info)


def _mlflow_client():
    """A client of the store Ray's ``setup`` chose (``mlflow.set_tracking_uri``)."""
    import mlflow

    return mlflow.MlflowClient()


_WandbLoggingActor, _QueueItem = wandb_actor()


class _WandbRun(_WandbLoggingActor):
    """One trial's W&B run, in a Ray actor on the driver's node (Ray's, with a loop that also
    ends the run with its trial's status, logs the best checkpoint under a name W&B accepts,
    and keeps W&B's banners and footers out of the sweep's console)."""

    def run(self) -> None:
        os.environ["WANDB_START_METHOD"] = "thread"  # as Ray's: a process of its own already
        os.environ["WANDB_SILENT"] = "true"  # the CLI prints where the runs are
        run = self._wandb.init(*self.args, **self.kwargs)
        while True:
            kind, content = self.queue.get()
            if kind == _QueueItem.END:
                status = content or FINISHED
                break
            if kind == _QueueItem.CHECKPOINT:
                self._log_checkpoint(run, *content)
                continue
            step = content.pop(TRAINING_ITERATION, None)
            try:
                run.log(content, step=step)
            except urllib.error.HTTPError as exc:  # as Ray's: a few lost points, not the run
                logger.warning("W&B: a result was not logged (%s)", exc)
        run.summary["trial_status"] = status
        run.finish(exit_code=WANDB_EXIT_CODES[status])
        # Ray kills this actor next, which skips W&B's exit: its service's folder would stay
        # in the temporary directory
        self._wandb.teardown()

    def _log_checkpoint(self, run, folder: str, name: str) -> None:
        try:
            artifact = self._wandb.Artifact(name=name, type="model")
            artifact.add_dir(folder)
            run.log_artifact(artifact)
        except Exception as exc:  # noqa: BLE001 - W&B's many errors: the run still ends
            logger.warning("W&B: the best checkpoint %s was not logged (%s: %s)", folder,
                           type(exc).__name__, exc)


class WandbCallback(_ShowsSettings, WandbLoggerCallback):
    """A run per trial (grouped by sweep): its settings as config, the sweep's ``tags``, every
    epoch's metrics (``trial_metrics``), its best checkpoint as an artifact (``artifacts``), and
    its end as exit code (``WANDB_EXIT_CODES``) and summary ``trial_status``. A resumed trial
    continues its run (``resume="allow"``: Ray's ``resume=False`` writes a second run with the
    same id). W&B prints nothing to the sweep's console.

    Ray's ``on_experiment_end`` waits for every run to end, up to ``upload_timeout`` (30
    minutes); a run whose trial a Ctrl-C stopped is never told to end, so Ctrl-C hung that
    long. Here such a run ends KILLED and the wait is ``STOP_SECONDS`` at most."""

    _logger_actor_cls = _WandbRun

    def __init__(self, settings: TrialSettings, *, tags: Mapping[str, str] | None = None,
                 artifacts: bool = True, **kwargs: Any):
        labels = [f"{key}={value}"[:64] for key, value in (tags or {}).items()]  # W&B: <= 64
        super().__init__(settings, **{"resume": "allow", "tags": labels, **kwargs})
        self.artifacts = artifacts
        self._open: set = set()  # trials whose run started and has not been told to end

    __setstate__ = _unpickle_with_defaults

    def log_trial_start(self, trial) -> None:
        super().log_trial_start(trial)
        self._open.add(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        row = {**trial_metrics(result), TRAINING_ITERATION: result[TRAINING_ITERATION]}
        super().log_trial_result(iteration, trial, row)  # the actor steps by the iteration

    def log_trial_end(self, trial, failed: bool = False) -> None:
        self._end_run(trial, FAILED if failed else FINISHED)
        collect_wandb_runs(self, timeout=0, kill_late=False)  # as Ray's: the finished ones

    def on_experiment_end(self, trials, **info) -> None:
        stopped = list(self._open)
        for trial in stopped:
            self._end_run(trial, KILLED)
        if stopped:
            collect_wandb_runs(self, timeout=STOP_SECONDS, kill_late=True)
        else:
            super().on_experiment_end(trials, **info)  # Ray's wait for the uploads

    def _end_run(self, trial, status: str) -> None:
        self._open.discard(trial)
        queue = wandb_queue(self, trial)
        if queue is None:
            return
        best = status != KILLED and self.artifacts and _trial_best_checkpoint(trial)
        if best:
            queue.put((_QueueItem.CHECKPOINT, (str(best), _artifact_name(trial))))
        queue.put((_QueueItem.END, status))

    def __del__(self) -> None:
        # Ray's __del__ calls ray.is_initialized(), which raises at interpreter exit (module
        # globals are None by then); on_experiment_end has already ended every run.
        with contextlib.suppress(AttributeError):
            super().__del__()


def _artifact_name(trial) -> str:
    """W&B's name of a trial's best checkpoint: label and trial id, in the characters W&B
    allows (no ``/``, at most 128)."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(trial)).strip("-")
    return f"{BEST_CHECKPOINT}-{label[:80]}-{trial.trial_id}"


def resolve_earlier_pickles() -> None:
    """A sweep's tuner.pkl written before these callbacks moved here names them in
    ``sweeps.tune_callbacks``: make those names find them, before ``Tuner.restore`` unpickles
    one."""
    for name in ("MLflowCallback", "WandbCallback", "_WandbRun"):
        setattr(tune_callbacks, name, globals()[name])
