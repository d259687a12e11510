"""Trackers and dashboards (sweeps/tracking.py, sweeps/tune_callbacks.py, sweeps/optuna_store.py)
without Ray running: what each store gets, where it lives, and what a user is told."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import ray.cloudpickle as pickle  # as Ray writes tuner.pkl
from ray_state_helpers import saved_by_tune

import tune_app
from sweeps import optuna_store, search, tracking
from sweeps.settings import SweepError, SweepSettings

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
    """What Ray's MLflow callback reads of a trial."""

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return f"run_trial_{self.trial_id}"


def test_mlflow_gets_a_run_per_trial_kept_across_a_resume(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from sweeps.tune_callbacks import MLflowCallback, TrialSettings

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # Ray's setup sets it: restored after
    config = {"point": "unet/aug", "lr": 0.003, "crop_size": 64}
    stored = pickle.dumps(MLflowCallback(TrialSettings(FIXED, POINTS), tracking_uri=uri,
                                         experiment_name="s"))  # as Ray keeps it in tuner.pkl
    first = pickle.loads(stored)
    first.setup()
    trial = _Trial(trial_id="t1", config=dict(config), evaluated_params=dict(config))
    first.log_trial_start(trial)
    assert trial.config == config  # the trial gets its own config back
    first.log_trial_result(1, trial, {"training_iteration": 1, "val_miou": 0.25})
    state = first.get_state()  # saved by Tune with the sweep; then the driver is killed

    resumed = pickle.loads(stored)
    resumed.set_state(state)
    resumed.setup()
    again = _Trial(trial_id="t1", config=dict(config), evaluated_params=dict(config))
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


def _study(url: str, name: str = "s"):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def test_a_resumed_optuna_search_does_not_queue_the_grid_points_again(tmp_path):
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path}/optuna.db"
    labels = list(POINTS)
    space = search.optuna_space(labels, [64, 96])
    started = search.optuna_searcher(labels, 1e-3, 64, storage=url, study_name="s")
    stored = pickle.dumps(started)  # Ray keeps the searcher as built in tuner.pkl
    started.set_search_properties(None, None, space)
    assert started.suggest("a") == {"point": labels[0], "lr": 1e-3, "crop_size": 64}
    # --resume: Ray sets the stored searcher up again, then restores its saved state
    pickle.loads(stored).set_search_properties(None, None, space)
    waiting = _study(url).get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [
        {"point": labels[1], "lr": 1e-3, "crop_size": 64}]  # once, not twice


def test_a_new_sweep_replaces_the_study_of_the_one_it_overwrites(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    optuna_store.start_study(url, "s", [{"x": 1}, {"x": 2}], "maximize")
    optuna_store.start_study(url, "s", [{"x": 3}], "maximize")
    assert [t.system_attrs.get("fixed_params") for t in _study(url).trials] == [{"x": 3}]


def test_trials_a_kill_abandoned_are_marked_failed_the_finished_keep_their_value(tmp_path):
    from optuna.trial import TrialState

    settings = SweepSettings(storage=str(tmp_path), name="s", search="optuna")
    url = optuna_store.study_url(settings)
    (tmp_path / "s").mkdir()
    optuna_store.start_study(url, "s", [], "maximize")
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
