"""Ray Tune's own logger callbacks (TensorBoard, MLflow, W&B), told each trial's resolved settings.

Tune's config of a trial holds only its grid point's label and the values a searcher proposed,
and Ray's callbacks log that: MLflow's and W&B's read ``trial.config`` when a trial starts,
TensorBoard's HParams read ``trial.evaluated_params`` when it ends. For those two calls the trial
shows the settings it trains with instead (``TrialSettings``: model, backbone, ASPP,
augmentation, lr, crop size, epochs, batch size, ... every ``TrialConfig`` field), then gets its
own back. Only public attributes of Ray's ``Trial`` change; what each callback reads, and
MLflow's private ``_trial_runs`` (its run per trial, kept across a resume; read through
``sweeps.ray_state``), are those of the Ray version pinned in pyproject.toml:
tests/sweeps/test_tracking.py (MLflow) and tests/e2e/test_tracking.py (every store) check what
the trackers received after an upgrade.

Imports Ray: ``sweeps.tracking`` (the registry the CLI reads) loads this module only to build a
sweep's callbacks. Ray keeps the callbacks in the sweep's ``tuner.pkl``, so they pickle.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.logger import TBXLoggerCallback

from segmodels.training import TrialConfig, trial_settings
from sweeps.ray_state import mlflow_trial_runs
from sweeps.search import POINT_KEY, split_tune_config


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


class MLflowCallback(_ShowsSettings, MLflowLoggerCallback):
    """A run per trial: its settings as params, every epoch's metrics. A resumed trial
    continues its own run: Tune saves this callback's state with the sweep's."""

    def __init__(self, settings: TrialSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self._resumed_runs: dict[str, str] = {}  # Tune's trial id -> MLflow run id

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
        super().log_trial_start(trial)


class WandbCallback(_ShowsSettings, WandbLoggerCallback):
    """A run per trial (grouped by sweep): its settings as config, every epoch's metrics."""

    def __del__(self) -> None:
        # Ray's __del__ calls ray.is_initialized(), which raises at interpreter exit (module
        # globals are None by then); on_experiment_end has already ended every run.
        with contextlib.suppress(AttributeError):
            super().__del__()
