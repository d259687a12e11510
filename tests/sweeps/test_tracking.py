"""Trackers and dashboards (sweeps/tracking.py, sweeps/tune_callbacks.py, sweeps/optuna_store.py)
without Ray running: what each store gets, where it lives, and what a user is told."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import ray.cloudpickle as pickle  # as Ray writes tuner.pkl
from ray_state_helpers import saved_by_tune
from wandb_records import finished_records, run_history, run_summary

import tune_app
from sweeps import optuna_store, search, tracking
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import CHECKPOINT_FILE, CHECKPOINT_PREFIX, META_FILE

POINTS = {"unet/aug": {"model": "unet", "augment": True},
          "deeplab/resnet18": {"model": "deeplab", "backbone": "resnet18", "aspp": True}}
FIXED = {"epochs": 3, "batch_size": 4}


def test_the_tracker_flag_offers_the_registry():
    choices = {a.dest: a.choices for a in tune_app.build_parser()._actions}
    assert choices["tracker"] == list(tracking.TRACKERS)


def test_a_missing_extra_is_one_line_naming_the_pip_command_before_ray_starts(
        monkeypatch, tmp_path, tiny_dataset_dir, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    code = tune_app.main(["--grid", "smoke", "--data", str(tiny_dataset_dir), "--tracker",
                          "mlflow", "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--tracker mlflow needs the optional extra 'mlflow'" in err
    assert "pip install 'segsweep[mlflow]'" in err
    assert not (tmp_path / "runs").exists()  # refused before Ray started or wrote anything


def test_stores_live_in_a_local_experiment_else_in_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    local = SweepSettings(storage=str(tmp_path), name="s", search="optuna")
    assert tracking.mlflow_uri(local) == f"sqlite:///{tmp_path}/s/mlflow.db"
    assert optuna_store.study_url(local) == f"sqlite:///{tmp_path}/s/optuna.db"
    monkeypatch.setattr("sweeps.settings.CACHE_DIR", tmp_path / "cache")
    remote = SweepSettings(storage="s3://bucket/runs", name="s", search="optuna")
    assert optuna_store.study_url(remote) == \
        f"sqlite:///{tmp_path}/cache/stores/s3_bucket_runs/s/optuna.db"
    assert "copy s3://bucket/runs/s to this machine" in tracking.dashboard_commands(remote)[0]


def test_an_mlflow_uri_from_the_environment_is_used_and_never_echoed(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://me:secret-token@mlflow.example")
    settings = SweepSettings(storage=str(tmp_path), name="s", trackers=["mlflow"])
    assert tracking.mlflow_uri(settings) is None  # MLflow reads it itself: not copied anywhere
    lines = tracking.dashboard_commands(settings)
    assert ("MLflow: experiment 's' at https://***@mlflow.example (from MLFLOW_TRACKING_URI)"
            in lines)  # where it is, not the variable's name
    assert not any("secret" in line or "me:" in line for line in lines)


def test_dashboard_commands_name_each_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    settings = SweepSettings(storage=str(tmp_path), name="s", search="optuna",
                             trackers=["mlflow", "wandb"])
    exp = tmp_path / "s"
    assert tracking.dashboard_commands(settings) == [
        f"TensorBoard: tensorboard --logdir {exp}",
        f"Optuna dashboard: optuna-dashboard sqlite:///{exp}/optuna.db "
        "(pip install optuna-dashboard)",
        f"MLflow: mlflow ui --backend-store-uri sqlite:///{exp}/mlflow.db",
        f"W&B (offline): wandb sync {exp}/wandb/offline-run-*"]


def test_trackers_get_the_resolved_settings_not_the_point_label():
    from sweeps.tune_callbacks import TrialSettings

    settings = TrialSettings(FIXED, POINTS)({"point": "deeplab/resnet18", "lr": np.float64(0.02),
                                             "crop_size": np.int64(96)})
    assert settings["point"] == "deeplab/resnet18"
    assert (settings["model"], settings["backbone"], settings["aspp"]) == \
        ("deeplab", "resnet18", "True")
    assert (settings["lr"], settings["crop_size"], settings["epochs"],
            settings["batch_size"]) == (0.02, 96, 3, 4)
    assert type(settings["crop_size"]) is int and type(settings["lr"]) is float
    assert settings["augment"] == "True"  # the TrialConfig default, filled in


class _Trial(SimpleNamespace):
    """What Ray's MLflow and W&B callbacks read of a trial (``path``: its storage folder)."""

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return f"run_trial_{self.trial_id}"


def test_mlflow_gets_a_run_per_trial_kept_across_a_resume(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from sweeps.tracker_callbacks import MLflowCallback
    from sweeps.tune_callbacks import TrialSettings

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # Ray's setup sets it: restored after
    config = {"point": "unet/aug", "lr": 0.003, "crop_size": 64}
    stored = pickle.dumps(MLflowCallback(TrialSettings(FIXED, POINTS), tracking_uri=uri,
                                         experiment_name="s"))  # as Ray keeps it in tuner.pkl
    first = pickle.loads(stored)
    first.setup()
    trial = _Trial(trial_id="t1", config=dict(config), evaluated_params=dict(config),
                   path=str(tmp_path), last_result={})
    first.log_trial_start(trial)
    assert trial.config == config  # the trial gets its own config back
    first.log_trial_result(1, trial, {"training_iteration": 1, "val_miou": 0.25})
    state = first.get_state()  # saved by Tune with the sweep; then the driver is killed

    resumed = pickle.loads(stored)
    resumed.set_state(state)
    resumed.setup()
    again = _Trial(trial_id="t1", config=dict(config), evaluated_params=dict(config),
                   path=str(tmp_path), last_result={})
    resumed.log_trial_start(again)
    resumed.log_trial_result(2, again, {"training_iteration": 2, "val_miou": 0.5})
    resumed.log_trial_end(again)

    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("s").experiment_id])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert (params["model"], params["lr"], params["crop_size"], params["epochs"]) == \
        ("unet", "0.003", "64", "3")
    history = client.get_metric_history(run.info.run_id, "val_miou")
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 0.5)]


# A reported row as Tune stores it in result.json: the trial's metrics and Ray's bookkeeping.
ROW = {"train_loss": 0.9, "val_loss": 1.1, "val_miou": 0.25, "val_iou_water": 0.5,
       "val_confusion": [[3, 1], [0, 2]], "lr": 1e-3, "epoch": 2, "epochs_planned": 3,
       "best_val_miou": 0.25, "best_epoch": 2, "train_minutes": 0.1, "params": 1234,
       "inference_ms_cpu": float("nan"), "hostname": "h", "pid": 42, "point": "unet/aug",
       "node_id": "abc", "timestamp": 1, "checkpoint_dir_name": "checkpoint_000001",
       "should_checkpoint": True, "done": False, "training_iteration": 2, "trial_id": "t1",
       "date": "2026-01-01", "time_this_iter_s": 1.0, "time_total_s": 2.0, "node_ip": "1.2.3.4",
       "config": {"point": "unet/aug"}, "time_since_restore": 2.0, "iterations_since_restore": 2}
METRICS = {"train_loss", "val_loss", "val_miou", "val_iou_water", "lr", "epoch",
           "epochs_planned", "best_val_miou", "best_epoch", "train_minutes", "params"}


def test_trackers_get_the_trials_metrics_without_rays_bookkeeping():
    from sweeps.tune_callbacks import trial_metrics

    metrics = trial_metrics(ROW)
    assert set(metrics) == METRICS  # no pid, hostname, node, config/..., done, times, ids
    assert metrics["val_miou"] == 0.25 and metrics["epoch"] == 2


def _checkpoint(trial_dir: Path, epoch: int, val_miou: float) -> Path:
    """A kept checkpoint folder as the trainable writes it."""
    folder = trial_dir / f"{CHECKPOINT_PREFIX}{epoch - 1:06d}"
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_FILE).write_bytes(b"weights")
    row = {"epoch": epoch, "val_miou": val_miou}
    (folder / META_FILE).write_text(json.dumps({**row, "point": "unet/aug", "row": row}))
    return folder


def test_the_best_checkpoint_is_the_best_epochs_else_the_highest_kept(tmp_path):
    from sweeps.resume_repair import best_checkpoint

    best, latest = _checkpoint(tmp_path, 2, 0.5), _checkpoint(tmp_path, 4, 0.3)
    (tmp_path / f"{CHECKPOINT_PREFIX}000009").mkdir()  # a copy cut short: no candidate
    assert best_checkpoint(tmp_path, 2).folder == best
    assert best_checkpoint(tmp_path, 3).folder == best  # its best epoch's folder is gone
    assert best_checkpoint(tmp_path, 4).folder == latest
    assert best_checkpoint(tmp_path / "none", 2) is None
    # a folder whose meta.json is lost (older sweeps) is known by the result row naming it
    (latest / META_FILE).unlink()
    assert best_checkpoint(tmp_path, 4).folder == best
    rows = [{"epoch": 4, "val_miou": 0.3, "checkpoint_dir_name": latest.name}]
    assert best_checkpoint(tmp_path, 4, rows).folder == latest


def _mlflow_runs(uri: str, name: str = "s") -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    return {run.data.tags["trial_name"]: run for run in runs}


def test_mlflow_runs_hold_tags_metrics_the_best_checkpoint_and_how_each_trial_ended(
        monkeypatch, tmp_path):
    """Three trials: one finishes, one fails, one is stopped by Ctrl-C (KILLED) and resumed
    into the same run, which then runs again and finishes. Artifacts go to the sweep's store
    folder, not to ./mlruns."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = SweepSettings(storage=str(tmp_path / "runs"), name="s", trackers=["mlflow"])
    tags = {"grid": "g", "search": "grid", "scheduler": "fifo", "synthetic_data": "yes"}
    [_, callback] = tracking.new_sweep_callbacks(settings, FIXED, POINTS, tags=tags)
    uri = tracking.mlflow_uri(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # Ray's setup sets it: restored after
    stored = pickle.dumps(callback)  # as Ray keeps it in tuner.pkl
    callback.setup()
    config = {"point": "unet/aug", "lr": 0.003, "crop_size": 64}
    trials = {}
    for name in ("done", "failed", "stopped"):
        folder = tmp_path / "runs" / "s" / name
        _checkpoint(folder, 1, 0.25)
        trials[name] = _Trial(trial_id=name, config=dict(config), evaluated_params=dict(config),
                              path=str(folder), last_result={"best_epoch": 1})
        callback.log_trial_start(trials[name])
        callback.log_trial_result(1, trials[name], {**ROW, "epoch": 1, "training_iteration": 1})
    callback.log_trial_end(trials["done"])
    callback.log_trial_end(trials["failed"], failed=True)
    state = callback.get_state()
    callback.on_experiment_end(list(trials.values()))  # Ctrl-C: Tune ends the experiment

    client = MlflowClient(uri)
    runs = _mlflow_runs(uri)
    assert {name: runs[f"run_trial_{name}"].info.status for name in trials} == {
        "done": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}
    for run in runs.values():
        assert {k: run.data.tags[k] for k in tags} == tags
        assert set(run.data.metrics) == METRICS
    done = runs["run_trial_done"].info
    assert done.artifact_uri.startswith((tmp_path / "runs" / "s").as_uri())
    assert [a.path for a in client.list_artifacts(done.run_id, "best_checkpoint")] == [
        f"best_checkpoint/{CHECKPOINT_FILE}", f"best_checkpoint/{META_FILE}"]
    assert not (tmp_path / "mlruns").exists()
    assert client.list_artifacts(runs["run_trial_stopped"].info.run_id) == []

    resumed = pickle.loads(stored)  # --resume: Ray's stored callback and its saved state
    resumed.set_state(state)
    resumed.setup()
    again = trials["stopped"]
    resumed.log_trial_start(again)
    assert _mlflow_runs(uri)["run_trial_stopped"].info.status == "RUNNING"
    resumed.log_trial_result(2, again, {**ROW, "training_iteration": 2})
    resumed.log_trial_end(again)
    resumed.on_experiment_end([again])
    run = _mlflow_runs(uri)["run_trial_stopped"]
    assert len(_mlflow_runs(uri)) == 3 and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "epoch")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0)]
    assert client.list_artifacts(run.info.run_id, "best_checkpoint")


def test_artifacts_are_optional(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = SweepSettings(storage=str(tmp_path), name="s", trackers=["mlflow", "wandb"],
                             tracker_artifacts=False)
    callbacks = tracking.new_sweep_callbacks(settings, FIXED, POINTS, tags={})
    assert [cb.artifacts for cb in callbacks[1:]] == [False, False]


def test_a_callback_an_earlier_version_pickled_resumes_without_artifacts(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = SweepSettings(storage=str(tmp_path), name="s", trackers=["mlflow", "wandb"])
    for callback in tracking.new_sweep_callbacks(settings, FIXED, POINTS, tags={})[1:]:
        del callback.artifacts, callback._open  # as pickled before they existed
        restored = pickle.loads(pickle.dumps(callback))
        assert (restored.artifacts, restored._open) == (False, set())


def test_runs_are_tagged_from_the_sweeps_record(tmp_path, tiny_dataset_dir):
    from sweeps.prepare import prepare
    from sweeps.record import write_sweep_record

    prepared = prepare(SweepSettings(grid="smoke", data=str(tiny_dataset_dir),
                                     storage=str(tmp_path), overrides={"crop_size": 64}))
    assert tracking.sweep_tags(prepared.settings)["synthetic_data"] == "no"  # no record yet
    write_sweep_record(prepared.settings, prepared.grid, prepared.fixed, prepared.data,
                       scheduler_reason="", resources={"cpu": 1, "gpu": 0}, cluster={"CPU": 1})
    assert tracking.sweep_tags(prepared.settings) == {
        "grid": "smoke", "search": "grid", "scheduler": prepared.settings.scheduler,
        "synthetic_data": "yes"}  # the tiny dataset is generated


class _Queue(list):
    """The queue Ray's W&B callback feeds a trial's actor with, as a list."""

    put = list.append

    def get(self):
        return self.pop(0)


def _wandb_files(root: Path) -> list[list]:
    """The records of each offline run under ``root``, oldest run first."""
    return [finished_records(run) for run in sorted((root / "wandb").glob("offline-run-*"))]


def test_a_wandb_run_ends_as_its_trial_and_a_resume_continues_it(monkeypatch, tmp_path):
    """Ray's W&B actor, as sweeps/tune_callbacks.py runs it, in this process: a run stopped by
    Ctrl-C ends KILLED; the resumed trial's run has the same id (resume=allow), logs the
    epochs after, and its best checkpoint as an artifact; W&B prints nothing."""
    pytest.importorskip("wandb")
    from sweeps.tracker_callbacks import _QueueItem, _WandbRun

    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "false",
                       "WANDB_START_METHOD": "thread", "WANDB_DATA_DIR": str(tmp_path / "data"),
                       "WANDB_CACHE_DIR": str(tmp_path / "cache"),
                       "WANDB_CONFIG_DIR": str(tmp_path / "config")}.items():
        monkeypatch.setenv(key, value)  # restored after: the actor sets some of them
    monkeypatch.chdir(tmp_path)  # the actor moves into the trial's folder
    best = _checkpoint(tmp_path / "trial", 1, 0.25)
    init = {"id": "t1", "name": "unet/aug", "project": "p", "group": "s", "resume": "allow",
            "dir": str(tmp_path), "tags": ["grid=g"], "config": {"model": "unet"}}
    stopped = _Queue([(_QueueItem.RESULT, {"val_miou": 0.25, "training_iteration": 1}),
                      (_QueueItem.END, "KILLED")])
    _WandbRun(str(tmp_path), stopped, [], [], **init).run()
    resumed = _Queue([(_QueueItem.RESULT, {"val_miou": 0.5, "training_iteration": 2}),
                      (_QueueItem.CHECKPOINT, (str(best), "best_checkpoint-unet-aug-t1")),
                      (_QueueItem.END, "FINISHED")])
    _WandbRun(str(tmp_path), resumed, [], [], **init).run()

    first, second = _wandb_files(tmp_path)
    for records, exit_code, status in ((first, 130, "KILLED"), (second, 0, "FINISHED")):
        [run] = [r.run for r in records if r.HasField("run")]
        assert (run.run_id, run.resume, list(run.tags)) == ("t1", True, ["grid=g"])
        [end] = [r.exit for r in records if r.HasField("exit")]
        assert end.exit_code == exit_code
        assert run_summary(records)["trial_status"] == status
    steps = run_history(first) + run_history(second)
    assert [(h["_step"], h["val_miou"]) for h in steps] == [(1, 0.25), (2, 0.5)]
    assert all("training_iteration" not in h for h in steps)
    [artifact] = [r.artifact for r in second if r.HasField("artifact")]
    assert artifact.name == "best_checkpoint-unet-aug-t1" and artifact.type == "model"
    assert sorted(m.path for m in artifact.manifest.contents) == [CHECKPOINT_FILE, META_FILE]


def test_the_wandb_callback_tells_each_run_how_its_trial_ended(monkeypatch, tmp_path):
    """What the driver sends each trial's W&B actor (Ray's actors replaced by queues): the
    metrics, then the best checkpoint and the end; at a Ctrl-C, KILLED to the runs still open,
    and a wait of STOP_SECONDS, not Ray's upload_timeout (30 minutes)."""
    pytest.importorskip("wandb")
    from ray.air.integrations.wandb import WandbLoggerCallback

    from sweeps import tracker_callbacks
    from sweeps.tracker_callbacks import STOP_SECONDS, WandbCallback, _QueueItem
    from sweeps.tune_callbacks import TrialSettings

    started, waits = {}, []

    def start(self, trial, exclude_results, **init):
        self._trial_queues[trial], self._trial_logging_actors[trial] = _Queue(), "actor"
        started[trial.trial_id] = init

    monkeypatch.setattr(WandbLoggerCallback, "_start_logging_actor", start)
    monkeypatch.setattr(tracker_callbacks, "collect_wandb_runs",
                        lambda callback, timeout, kill_late: waits.append((timeout, kill_late)))
    callback = WandbCallback(TrialSettings(FIXED, POINTS), tags={"grid": "g"}, project="p")
    config = {"point": "unet/aug", "lr": 0.003, "crop_size": 64}
    trials = {}
    for name in ("done", "failed", "stopped"):
        folder = tmp_path / name
        _checkpoint(folder, 1, 0.25)
        trials[name] = _Trial(trial_id=name, config=dict(config), evaluated_params=dict(config),
                              path=str(folder), last_result={"best_epoch": 1},
                              experiment_dir_name="s")
        callback.log_trial_start(trials[name])
        callback.log_trial_result(1, trials[name], ROW)
    queues = {name: list(callback._trial_queues[trial]) for name, trial in trials.items()}
    callback.log_trial_end(trials["done"])
    callback.log_trial_end(trials["failed"], failed=True)
    callback.on_experiment_end(list(trials.values()))

    init = started["done"]
    assert (init["id"], init["resume"], init["tags"]) == ("done", "allow", ["grid=g"])
    assert init["config"]["model"] == "unet"  # the resolved settings
    [(kind, row)] = queues["done"]
    assert kind == _QueueItem.RESULT and set(row) == METRICS | {"training_iteration"}
    ends = {name: list(callback._trial_queues[trial])[1:] for name, trial in trials.items()}
    assert ends["done"] == [
        (_QueueItem.CHECKPOINT, (str(tmp_path / "done" / f"{CHECKPOINT_PREFIX}000000"),
                                 "best_checkpoint-run_trial_done-done")),
        (_QueueItem.END, "FINISHED")]
    assert ends["failed"][-1] == (_QueueItem.END, "FAILED")
    assert ends["stopped"] == [(_QueueItem.END, "KILLED")]  # no upload after a Ctrl-C
    assert waits == [(0, False), (0, False), (STOP_SECONDS, True)]


def test_rays_wandb_callback_inside_is_what_ray_state_reads(monkeypatch, tmp_path):
    """The W&B callback's private parts sweeps/tune_callbacks.py relies on, read through
    sweeps/ray_state.py: the actor class it subclasses (and what its loop reads of it), the
    queue items, each trial's queue and the wait for the actors."""
    import inspect

    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback

    from sweeps import ray_state

    module = "sweeps/ray_state.py"
    monkeypatch.chdir(tmp_path)  # the actor moves into its trial's folder
    try:
        actor, item = ray_state.wandb_actor()
        assert WandbLoggerCallback._logger_actor_cls is actor
        assert "_logger_actor_cls" in inspect.getsource(WandbLoggerCallback._start_logging_actor)
        assert {"RESULT", "CHECKPOINT", "END"} <= set(item.__members__)
        made = actor(str(tmp_path), _Queue(), [], [], id="t1", name="n")
        assert (made.queue, made.args, made.kwargs["id"]) == ([], (), "t1")
        assert made._wandb.__name__ == "wandb"
        callback = WandbLoggerCallback(project="p")
        assert ray_state.wandb_queue(callback, _Trial(trial_id="t1")) is None
        assert {"timeout", "kill_on_timeout"} <= set(
            inspect.signature(callback._cleanup_logging_actors).parameters)
    except Exception as exc:  # noqa: BLE001 - an upgrade may break it in any way
        pytest.fail(f"Ray's W&B callback is not what {module} expects under Ray "
                    f"{ray.__version__} ({type(exc).__name__}: {exc}); update {module} and "
                    "sweeps/tune_callbacks.py's W&B run")


def _study(url: str, name: str = "s"):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def test_a_resumed_optuna_search_does_not_queue_the_grid_points_again(tmp_path):
    from optuna.trial import TrialState

    from sweeps.grids import Grid
    from sweeps.search_space import build_space

    url = f"sqlite:///{tmp_path}/optuna.db"
    grid = Grid("g", list(POINTS.values()))
    space = build_space(grid, [64, 96])
    seeds = [space.seed(label, {"lr": 1e-3, "crop_size": 64}) for label in grid.labels]
    started = search.optuna_searcher(space, seeds, objectives=["miou"], budgets={}, costs={},
                                     storage=url, study_name="s")
    stored = pickle.dumps(started)  # Ray keeps the searcher as built in tuner.pkl
    started.set_search_properties(None, None, {})
    assert started.suggest("a")["point"] == grid.labels[0]
    # --resume: Ray sets the stored searcher up again, then restores its saved state
    pickle.loads(stored).set_search_properties(None, None, {})
    waiting = _study(url).get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == seeds[1:]  # once, not twice


def test_a_new_sweep_replaces_the_study_of_the_one_it_overwrites(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    optuna_store.start_study(url, "s", [{"x": 1}, {"x": 2}], ["maximize"], ["miou"])
    optuna_store.start_study(url, "s", [{"x": 3}], ["maximize"], ["miou"])
    assert [t.system_attrs.get("fixed_params") for t in _study(url).trials] == [{"x": 3}]


def test_trials_a_kill_abandoned_are_marked_failed_the_finished_keep_their_value(tmp_path):
    from optuna.trial import TrialState

    settings = SweepSettings(storage=str(tmp_path), name="s", search="optuna")
    url = optuna_store.study_url(settings)
    (tmp_path / "s").mkdir()
    optuna_store.start_study(url, "s", [], ["maximize"], ["miou"])
    study = _study(url)
    done, abandoned = study.ask(), study.ask()
    study.tell(done, 0.5)
    notes = optuna_store.fail_abandoned_trials(settings)
    states = {t.number: (t.state, t.value) for t in _study(url).trials}
    assert states == {done.number: (TrialState.COMPLETE, 0.5),
                      abandoned.number: (TrialState.FAIL, None)}
    assert len(notes) == 1 and f"Optuna trial {abandoned.number}" in notes[0]


def test_resume_keeps_the_sweeps_own_trackers(tmp_path, tiny_dataset_dir):
    from sweeps.prepare import prepare
    from sweeps.record import write_sweep_record

    started = prepare(SweepSettings(grid="smoke", data=str(tiny_dataset_dir),
                                           storage=str(tmp_path), trackers=["mlflow"],
                                           overrides={"crop_size": 64, "batch_size": 4}))
    write_sweep_record(started.settings, started.grid, started.fixed, started.data,
                       scheduler_reason="", resources={"cpu": 1, "gpu": 0}, cluster={"CPU": 1})
    saved_by_tune(tmp_path / "smoke")
    resumed = prepare(SweepSettings(name="smoke", storage=str(tmp_path), resume=True))
    assert resumed.settings.trackers == ["mlflow"]
    with pytest.raises(SweepError, match="with its own trackers \\(mlflow\\); drop --tracker"):
        prepare(SweepSettings(name="smoke", storage=str(tmp_path), resume=True,
                                     trackers=["wandb"]))


def test_an_mlflow_store_mlflow_refuses_is_refused_before_ray(monkeypatch, tmp_path,
                                                               tiny_dataset_dir, capsys):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{store}")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    code = tune_app.main(["--grid", "smoke", "--data", str(tiny_dataset_dir), "--tracker",
                          "mlflow", "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--tracker mlflow: MLFLOW_TRACKING_URI file://{store} cannot be used" in err
    assert "sqlite" in err  # MLflow's own remedy, kept
    assert not (tmp_path / "runs").exists()


def test_an_mlflow_server_that_does_not_answer_is_refused_at_once_without_its_password(
        monkeypatch):
    import socket
    import time

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://me:secret-token@127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(SweepError) as refused:
        tracking.check_trackers(["mlflow"])
    assert time.monotonic() - started < 2 * tracking.MLFLOW_CHECK_SECONDS
    assert f"http://***@127.0.0.1:{port} cannot be used" in str(refused.value)
    assert "secret-token" not in str(refused.value)


def _wandb_check(tmp_path, **env) -> subprocess.CompletedProcess:
    """check_trackers(['wandb']) in a fresh process, on a machine with no W&B login."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NETRC"))}
    return subprocess.run(
        [sys.executable, "-c", "from sweeps.tracking import check_trackers; "
                               "check_trackers(['wandb'])"],
        cwd=tune_app.__file__.rsplit("/", 1)[0], capture_output=True, text=True, timeout=120,
        env={**clean, "HOME": str(home), **env})


def test_wandb_online_without_a_login_is_refused_offline_is_not(tmp_path):
    refused = _wandb_check(tmp_path)
    assert refused.returncode != 0
    assert "--tracker wandb: no W&B login" in refused.stderr
    assert "WANDB_MODE=offline" in refused.stderr
    assert _wandb_check(tmp_path, WANDB_MODE="offline").returncode == 0
    assert _wandb_check(tmp_path, WANDB_API_KEY="x" * 40).returncode == 0


def test_a_sweep_without_trackers_loads_neither_and_old_pickles_still_find_the_callbacks():
    """The CLI builds a sweep's callbacks without importing MLflow or W&B unless a tracker is
    asked for; a tuner.pkl written before the MLflow and W&B callbacks moved to
    sweeps.tracker_callbacks names them in sweeps.tune_callbacks: a resume resolves those names
    (sweeps.runner calls resolve_earlier_pickles before Tuner.restore)."""
    import pickle

    code = ("import sys; from sweeps.tracking import new_sweep_callbacks; "
            "from sweeps.settings import SweepSettings; "
            "cbs = new_sweep_callbacks(SweepSettings(name='s', storage=sys.argv[1]), {}, {}, "
            "tags={}); print(len(cbs), 'mlflow' in sys.modules, 'wandb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "/tmp/unused-storage"],
                         cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "False", "False"], out.stderr[-2000:]

    from sweeps import tracker_callbacks

    tracker_callbacks.resolve_earlier_pickles()
    for name in ("MLflowCallback", "WandbCallback"):
        old = f"csweeps.tune_callbacks\n{name}\n.".encode()  # a class as pickle names it
        assert pickle.loads(old) is getattr(tracker_callbacks, name)
