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
sweep's callbacks. Ray keeps the callbacks in the sweep's ``tuner.pkl``, so they pickle. The
MLflow and W&B callbacks live in ``sweeps.tracker_callbacks``, which imports MLflow and W&B:
a sweep without trackers loads neither (about a second less at start).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

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
from sweeps.search import POINT_KEY, split_tune_config

# How a tracker run ends: its trial finished (ASHA's stop included), failed after its retries,
# or was stopped unfinished (Ctrl-C: a resume continues it). MLflow's own run statuses.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"

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



