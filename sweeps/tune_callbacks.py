"""Ray Tune's own logger callbacks (TensorBoard, MLflow, W&B), told each trial's resolved settings,
and a tracker run per trial that ends as its trial did.

Tune's config of a trial holds only its grid point's label and the values a searcher proposed,
and Ray's callbacks log that: MLflow's and W&B's read ``trial.config`` when a trial starts,
TensorBoard's HParams read ``trial.evaluated_params`` when it ends. For those two calls the trial
shows the settings it trains with instead (``TrialSettings``: model, backbone, ASPP,
augmentation, lr, crop size, epochs, batch size, ... every ``TrialConfig`` field), then gets its
own back. Only public attributes of Ray's ``Trial`` change.

MLflow and W&B runs also get the sweep's tags (grid, search, scheduler, synthetic data), each
epoch's metrics without Ray's bookkeeping (``trial_metrics``), the trial's best checkpoint as an
artifact, and its end: FINISHED, FAILED, or KILLED for a trial a Ctrl-C stopped (Ray leaves that
run open). A resumed trial continues its run in both. What this needs of Ray's callbacks beyond
their public API (MLflow's ``_trial_runs``, the inside of the W&B callback) is read through
``sweeps.ray_state``, for the Ray version pinned in pyproject.toml: tests/sweeps/test_tracking.py
and tests/e2e/test_tracking.py check what the trackers received after an upgrade.

Imports Ray: ``sweeps.tracking`` (the registry the CLI reads) loads this module only to build a
sweep's callbacks. Ray keeps the callbacks in the sweep's ``tuner.pkl``, so they pickle.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import re
import time
import urllib.error
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ray.air.constants import TRAINING_ITERATION
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.logger import TBXLoggerCallback
from ray.tune.result import (
    AUTO_RESULT_KEYS,
    DEBUG_METRICS,
    DONE,
    EXPERIMENT_TAG,
    SHOULD_CHECKPOINT,
    TRIAL_ID,
)

from segmodels.training import TrialConfig, trial_settings
from sweeps.ray_state import collect_wandb_runs, mlflow_trial_runs, wandb_actor, wandb_queue
from sweeps.resume_repair import best_checkpoint
from sweeps.search import POINT_KEY, split_tune_config

logger = logging.getLogger(__name__)

# How a tracker run ends: its trial finished (ASHA's stop included), failed after its retries,
# or was stopped unfinished (Ctrl-C: a resume continues it). MLflow's own run statuses.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
# W&B records an exit code only: 130 is a process stopped by SIGINT (128 + 2)
WANDB_EXIT_CODES = {FINISHED: 0, FAILED: 1, KILLED: 130}
STOP_SECONDS = 15  # after a Ctrl-C: the longest wait for the open W&B runs to finish
BEST_CHECKPOINT = "best_checkpoint"  # the artifact: the trial's best kept checkpoint folder

# What a reported row holds besides the trial's metrics: Ray's bookkeeping (the keys Tune adds:
# done, training_iteration, time_this_iter_s, config, pid, hostname, node_ip, date, ...) and where
# the trial ran (segmodels' static facts; sweeps/trainable.py's point label and Ray node).
NOT_METRICS = frozenset({*AUTO_RESULT_KEYS, *DEBUG_METRICS, DONE, SHOULD_CHECKPOINT, TRIAL_ID,
                         EXPERIMENT_TAG, "hostname", "pid", "node_id", "point"})


class TrialSettings:
    """Tune's config of a trial -> the flat settings it trains with (``trial_settings``, the
    trainable's own merge), as numbers and strings, the types every tracker accepts."""

    def __init__(self, fixed: Mapping[str, Any], points: Mapping[str, Mapping[str, Any]]):
        self.fixed, self.points = dict(fixed), {k: dict(v) for k, v in points.items()}

    def __call__(self, config: Mapping[str, Any]) -> dict[str, str | int | float]:
        label, searched = split_tune_config(dict(config))
        cfg = TrialConfig.from_dict(trial_settings(self.fixed, self.points[label], searched))
        flat = cfg.to_dict()
        model_kwargs = flat.pop("model_kwargs")
        flat |= {f"model_kwargs.{k}": v for k, v in sorted(model_kwargs.items())}
        return {POINT_KEY: label, **{k: _scalar(v) for k, v in flat.items()}}


def _scalar(value: Any) -> str | int | float:
    """Numbers stay numbers (numpy's become Python's); anything else (None, bools, names)
    becomes text, so a setting has one type across the trials of a sweep."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value.item() if hasattr(value, "item") else value
    return str(value)


class _ShowsSettings:
    """Mixin for a Ray logger callback: while it starts or ends a trial, the trial's
    ``config`` and ``evaluated_params`` are its resolved settings."""

    def __init__(self, settings: TrialSettings, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings

    @contextlib.contextmanager
    def _showing_settings(self, trial) -> Iterator[None]:
        config, params = trial.config, trial.evaluated_params
        trial.config = trial.evaluated_params = self.settings(config)
        try:
            yield
        finally:
            trial.config, trial.evaluated_params = config, params

    def log_trial_start(self, trial) -> None:
        with self._showing_settings(trial):
            super().log_trial_start(trial)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        with self._showing_settings(trial):
            super().log_trial_end(trial, failed=failed)


class TensorBoardCallback(_ShowsSettings, TBXLoggerCallback):
    """Each trial's curves in its folder and, when it ends, HParams: its settings against its
    last reported row (``ray/tune/best_val_miou`` among the metrics). Replaces the TensorBoard
    logger Tune would add by default."""


def trial_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """A reported row -> the trial's own metrics (losses, mIoUs, per-class IoU, lr, epoch,
    times, size): finite numbers, without Ray's bookkeeping. A figure not measured (nan, such as
    the CPU time a trial leaves to the after-sweep pass) is left out."""
    return {key: float(value) for key, value in result.items()
            if key not in NOT_METRICS and isinstance(value, numbers.Real)
            and not isinstance(value, bool) and math.isfinite(value)}


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
