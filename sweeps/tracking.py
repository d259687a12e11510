"""Where sweep users already look: the ``--tracker`` choices (``TRACKERS``), where their stores
live, and the one-line command that opens each dashboard.

- TensorBoard, always: each trial's folder holds its curves, validation images and HParams
  (settings against best val mIoU); ``tensorboard --logdir EXPERIMENT`` shows them all.
- ``--tracker mlflow``: a run per trial in ``MLFLOW_TRACKING_URI`` when that is set, else in an
  SQLite store (``MLFLOW_FILE``) in ``SweepSettings.local_store_path()``, its artifacts beside
  it (``MLFLOW_ARTIFACTS``).
- ``--tracker wandb``: a run per trial, grouped by sweep, wherever W&B's environment says
  (``WANDB_MODE=offline`` needs no network: the runs wait in ``wandb/`` of the store folder,
  or of ``WANDB_DIR``, for ``wandb sync``).
- ``--search optuna``: the study, in SQLite (sweeps/optuna_store.py), for ``optuna-dashboard``.

Each tracker is Ray Tune's own callback (sweeps/tune_callbacks.py), told the trial's resolved
settings and the sweep's tags (``sweep_tags``); a run also holds its trial's best checkpoint
(unless ``SweepSettings.tracker_artifacts`` is off) and ends as its trial did. Credentials are
never passed, stored or printed: MLflow and W&B read theirs from their environment or login.
Cheap to import: the CLI reads ``TRACKERS`` for its choices.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps import optuna_store
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import MLFLOW_FILE

WANDB_PROJECT = "segsweep"  # unless $WANDB_PROJECT says otherwise
MLFLOW_ARTIFACTS = "mlflow-artifacts"  # beside MLFLOW_FILE: the artifacts of its runs


@dataclass(frozen=True)
class Tracker:
    extra: str  # the optional dependency group in pyproject.toml; also the module it installs
    description: str


TRACKERS: dict[str, Tracker] = {
    "mlflow": Tracker("mlflow", "a run per trial (settings as params, every epoch's metrics, "
                                "the best checkpoint)"),
    "wandb": Tracker("wandb", "a run per trial (settings as config, every epoch's metrics, "
                              "the best checkpoint), grouped by sweep"),
}


def check_trackers(names: list[str]) -> None:
    """Before Ray starts: every tracker is known, its optional extra is installed, and what
    would fail its Tune callback's setup does not (a store MLflow refuses or cannot reach, W&B
    online without a login): such a failure after the sweep's record would leave a sweep
    with nothing to resume."""
    for name in names:
        if name not in TRACKERS:
            raise SweepError(f"--tracker {name!r}: choose from {', '.join(TRACKERS)}")
        extra = TRACKERS[name].extra
        if importlib.util.find_spec(extra) is None:
            raise SweepError(f"--tracker {name} needs the optional extra {extra!r}, which is "
                             f"not installed: pip install 'segsweep[{extra}]' (in a checkout: "
                             f"pip install -e '.[{extra}]')")
    if "mlflow" in names:
        _check_mlflow_store()
    if "wandb" in names:
        _check_wandb_login()


MLFLOW_CHECK_SECONDS = 10  # a tracking server that does not answer within this is refused


def _check_mlflow_store() -> None:
    """The store ``MLFLOW_TRACKING_URI`` names answers (credentials included), asked once,
    without MLflow's minutes of retries. The sweep's own SQLite store needs no check."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    import mlflow

    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
             "MLFLOW_HTTP_REQUEST_TIMEOUT": str(MLFLOW_CHECK_SECONDS)}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update(quick)
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; each means "unusable"
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        why = re.sub(r"://[^/@\s]+@", "://***@", why)  # MLflow echoes the URI, password too
        raise SweepError(f"--tracker mlflow: MLFLOW_TRACKING_URI {without_credentials(uri)} "
                         f"cannot be used ({type(exc).__name__}: {why[:400]}); fix it, or "
                         "unset it to keep the runs in the sweep's own SQLite store") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_wandb_login() -> None:
    """W&B online needs an API key (Ray's callback raises without one, as Ray's
    ``_set_api_key`` looks for it: WANDB_API_KEY, a ``wandb login``, or the key hook)."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_SETUP_API_KEY_HOOK"):
        return
    import wandb

    if not wandb.login(prompt=False, verify=False):
        raise SweepError("--tracker wandb: no W&B login (no WANDB_API_KEY and no `wandb "
                         "login` on this machine); log in, or set WANDB_MODE=offline to keep "
                         "the runs here for `wandb sync`")


def mlflow_uri(settings: SweepSettings) -> str | None:
    """The MLflow store of a sweep; None when ``MLFLOW_TRACKING_URI`` is set (MLflow then
    reads it itself, so a URI that carries credentials is never copied into the sweep)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return f"sqlite:///{settings.local_store_path() / MLFLOW_FILE}"


def new_sweep_callbacks(settings: SweepSettings, fixed: Mapping[str, Any],
                        points: Mapping[str, Mapping[str, Any]],
                        tags: Mapping[str, str] | None = None) -> list:
    """Tune callbacks of a new sweep: TensorBoard and each ``settings.trackers``, whose runs get
    ``tags`` (default: ``sweep_tags``). A new MLflow store in the sweep's own folder replaces
    the one of a sweep this one overwrites. (A resumed sweep keeps the callbacks Ray stored
    with it.)"""
    from sweeps import tune_callbacks as cb

    resolved = cb.TrialSettings(fixed, points)
    tags = dict(sweep_tags(settings) if tags is None else tags)
    callbacks: list = [cb.TensorBoardCallback(resolved)]
    if "mlflow" in settings.trackers:
        uri = mlflow_uri(settings)
        if uri is not None:
            _new_mlflow_store(settings, uri)
        from sweeps.tracker_callbacks import MLflowCallback  # MLflow: only when asked for

        callbacks.append(MLflowCallback(resolved, tracking_uri=uri,
                                        experiment_name=settings.name, tags=tags,
                                        artifacts=settings.tracker_artifacts))
    if "wandb" in settings.trackers:
        # W&B's files straight into the store folder: in a trial's folder Ray would copy them
        # to storage before W&B has finished writing them (its last sync comes first)
        where = {} if os.environ.get("WANDB_DIR") else {"dir": str(_store(settings))}
        from sweeps.tracker_callbacks import WandbCallback  # W&B: only when asked for

        callbacks.append(WandbCallback(
            resolved, tags=tags, artifacts=settings.tracker_artifacts,
            project=os.environ.get("WANDB_PROJECT") or WANDB_PROJECT, group=settings.name,
            **where))
    return callbacks


def sweep_tags(settings: SweepSettings) -> dict[str, str]:
    """What each tracker run of a sweep is tagged with, from its record (written before Tune
    starts; else its settings): grid, search, scheduler, and whether the data is synthetic."""
    from sweeps.record import read_sweep_record

    record = read_sweep_record(settings) or {}
    synthetic = (record.get("data") or {}).get("synthetic", settings.data is None)
    return {"grid": str(record.get("grid") or settings.grid), "search": settings.search,
            "scheduler": str(settings.scheduler), "synthetic_data": "yes" if synthetic else "no"}


def _new_mlflow_store(settings: SweepSettings, uri: str) -> None:
    """A fresh SQLite store holding the sweep's experiment, its artifacts in the store folder
    (``MLFLOW_ARTIFACTS``): MLflow's default is ./mlruns of whatever folder the CLI ran in, and
    Ray's callback would create the experiment with that default."""
    import mlflow

    store = _store(settings)
    (store / MLFLOW_FILE).unlink(missing_ok=True)
    shutil.rmtree(store / MLFLOW_ARTIFACTS, ignore_errors=True)
    mlflow.MlflowClient(uri).create_experiment(
        settings.name, artifact_location=(store / MLFLOW_ARTIFACTS).resolve().as_uri())


def _store(settings: SweepSettings) -> Path:
    store = settings.local_store_path()
    store.mkdir(parents=True, exist_ok=True)
    return store


def without_credentials(uri: str) -> str:
    """``https://me:token@host/x`` -> ``https://***@host/x``: a URI fit to print."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def dashboard_commands(settings: SweepSettings) -> list[str]:
    """One line per dashboard of this sweep, each a command to copy (never a credential)."""
    exp = settings.experiment_path()
    if settings.remote_storage:
        lines = [f"TensorBoard: copy {exp} to this machine, then: tensorboard --logdir COPY"]
    else:
        lines = [f"TensorBoard: tensorboard --logdir {shlex.quote(exp)}"]
    if settings.search == "optuna":
        lines.append(f"Optuna dashboard: optuna-dashboard "
                     f"{shlex.quote(optuna_store.study_url(settings))} "
                     "(pip install optuna-dashboard)")
    if "mlflow" in settings.trackers:
        uri = mlflow_uri(settings)
        lines.append(f"MLflow: mlflow ui --backend-store-uri {shlex.quote(uri)}" if uri else
                     f"MLflow: experiment {settings.name!r} at "
                     f"{without_credentials(os.environ.get('MLFLOW_TRACKING_URI', ''))} "
                     "(from MLFLOW_TRACKING_URI)")
    if "wandb" in settings.trackers:
        if os.environ.get("WANDB_MODE") == "offline":
            root = os.environ.get("WANDB_DIR") or settings.local_store_path()
            lines.append(f"W&B (offline): wandb sync {root}/wandb/offline-run-*")
        else:
            project = os.environ.get("WANDB_PROJECT") or WANDB_PROJECT
            lines.append(f"W&B: project {project!r}, group {settings.name!r}")
    return lines
