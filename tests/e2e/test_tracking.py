"""Where sweep users already look, end to end and offline: one small Optuna sweep run with
``--tracker mlflow --tracker wandb`` and ``WANDB_MODE=offline`` leaves an MLflow store, W&B
offline runs, an Optuna study and TensorBoard HParams, each holding every trial, at the places
the CLI prints (slow: starts Ray once, two trials of two epochs, about a minute on 2 cores).
A one-trial sweep with both trackers stopped by Ctrl-C and resumed: the runs end KILLED, then
continue (two more runs of the CLI, about a minute and a half)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_helpers import FLAGS, ROOT, Sweep, results, run_app, write_grid
from wandb_records import finished_records, run_history, run_summary

from sweeps.search import trial_label
from sweeps.storage import CHECKPOINT_FILE
from sweeps.tracking import MLFLOW_ARTIFACTS

pytestmark = pytest.mark.slow
BUILT_ONCE = ("sweep", "stopped")  # their tests share a worker (tests/conftest.py)
EPOCHS = 2
# What a tracker run must not hold as metrics: Ray's bookkeeping, where the trial ran
BOOKKEEPING = {"pid", "hostname", "node_id", "node_ip", "done", "training_iteration",
               "time_this_iter_s", "time_total_s", "timestamp", "time_since_restore",
               "iterations_since_restore", "trial_id", "date", "should_checkpoint"}
TAGS = {"grid": "tracked", "search": "optuna", "scheduler": "fifo", "synthetic_data": "yes"}


def _tracker_env(root: Path) -> dict[str, str]:
    """This machine's environment without MLflow's and W&B's settings: offline W&B keeping its
    caches and artifact copies under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    return env | {"WANDB_MODE": "offline", "WANDB_DATA_DIR": str(root / "wandb-data"),
                  "WANDB_CACHE_DIR": str(root / "wandb-cache"),
                  "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_dataset_dir) -> tuple[Path, str]:
    """(experiment folder, the CLI's output) of a finished sweep: the grid's one point plus one
    Optuna sample."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("tracking")
    grid = write_grid(root, "tracked", {"model": ["unet"], "augment": [False]})
    env = _tracker_env(root)
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), "--epochs", str(EPOCHS),
            "--crop-size", "64", "--batch-size", "4", "--inference-repeats", "1", "--no-report",
            "--search", "optuna", "--num-samples", "1", "--scheduler", "fifo",
            "--num-cpus", "2", "--tracker", "mlflow", "--tracker", "wandb", "--no-dashboard",
            "--storage", str(root / "runs")]
    proc = subprocess.run([sys.executable, str(ROOT / "tune_app.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "runs" / "tracked", proc.stdout


def _printed(output: str, pattern: str) -> str:
    """The last match of ``pattern``'s group in the CLI's output (it prints them at the end)."""
    found = re.findall(pattern, output)
    assert found, f"{pattern!r} not printed"
    return found[-1]


def _trials(exp: Path) -> dict[str, tuple[dict, list[dict]]]:
    """Tune's trial id -> (its params.json, its result.json rows)."""
    out = {}
    for folder in (p for p in exp.iterdir() if (p / "params.json").is_file()):
        lines = (folder / "result.json").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line]
        out[rows[-1]["trial_id"]] = (json.loads((folder / "params.json").read_text()), rows)
    assert len(out) == 2
    return out


def test_mlflow_holds_a_run_per_trial_with_its_settings_and_every_epoch(sweep):
    from mlflow import MlflowClient

    exp, output = sweep
    uri = _printed(output, r"MLflow: mlflow ui --backend-store-uri (\S+)")
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(exp.name).experiment_id])
    # each run named by its trial's label, as the ranking names it (not run_trial_<id>)
    trials = {trial_label(params): (params, rows) for params, rows in _trials(exp).values()}
    assert sorted(r.info.run_name for r in runs) == sorted(trials)
    for run in runs:
        assert run.data.tags["trial_name"] == run.info.run_name
        assert {k: run.data.tags.get(k) for k in TAGS} == TAGS
        params, rows = trials[run.info.run_name]
        assert run.info.status == "FINISHED"
        assert run.data.params["model"] == "unet"
        assert float(run.data.params["lr"]) == params["lr"]
        assert int(run.data.params["crop_size"]) == params["crop_size"]
        assert {"train_loss", "val_miou", "best_val_miou", "epoch"} <= set(run.data.metrics)
        assert not BOOKKEEPING & set(run.data.metrics)
        assert not any(key.startswith("config") for key in run.data.metrics)
        history = client.get_metric_history(run.info.run_id, "val_miou")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            [(r["epoch"], pytest.approx(r["val_miou"])) for r in rows]
        # the best checkpoint, kept beside the store in the experiment folder
        assert run.info.artifact_uri.startswith((exp / MLFLOW_ARTIFACTS).as_uri())
        files = client.list_artifacts(run.info.run_id, "best_checkpoint")
        assert f"best_checkpoint/{CHECKPOINT_FILE}" in [f.path for f in files]
    assert not (ROOT / "mlruns").exists()


def test_wandb_offline_runs_hold_every_trials_settings_and_metrics(sweep):
    exp, output = sweep
    pattern = _printed(output, r"W&B \(offline\): wandb sync (\S+)")
    runs = sorted(Path("/").glob(pattern.lstrip("/")))
    trials = _trials(exp)
    assert len(runs) == len(trials)
    for run in runs:
        records = finished_records(run)
        [start] = [r.run for r in records if r.HasField("run")]
        params, rows = trials[start.run_id]
        assert sorted(start.tags) == sorted(f"{k}={v}" for k, v in TAGS.items())
        config = {item.key: json.loads(item.value_json) for item in start.config.update}
        assert (config["model"], config["lr"], config["crop_size"]) == \
            ("unet", params["lr"], params["crop_size"])
        steps = run_history(records)
        assert [(h["epoch"], h["val_miou"]) for h in steps] == \
            [(r["epoch"], pytest.approx(r["val_miou"])) for r in rows]
        assert not BOOKKEEPING & {key for h in steps for key in h}
        [end] = [r.exit for r in records if r.HasField("exit")]
        assert end.exit_code == 0 and run_summary(records)["trial_status"] == "FINISHED"
        [artifact] = [r.artifact for r in records if r.HasField("artifact")]
        assert CHECKPOINT_FILE in [m.path for m in artifact.manifest.contents]
    assert "wandb:" not in output  # W&B's banners and footers stay out of the console


def test_the_optuna_study_holds_every_trial_with_its_value_and_none_running(sweep):
    import optuna
    from optuna.trial import TrialState

    exp, output = sweep
    url = _printed(output, r"Optuna dashboard: optuna-dashboard (\S+)")
    study = optuna.load_study(study_name=exp.name, storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    expected = sorted((p["lr"], p["crop_size"], rows[-1]["val_miou"])
                      for p, rows in _trials(exp).values())
    assert sorted((t.params["lr"], t.params["crop_size"], t.value) for t in study.trials) == \
        [pytest.approx(e) for e in expected]


def test_the_printed_tensorboard_folder_holds_curves_images_and_hparams(sweep):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata

    exp, output = sweep
    logdir = Path(_printed(output, r"TensorBoard: tensorboard --logdir (\S+)"))
    assert logdir == exp and logdir.is_dir()
    board = EventMultiplexer().AddRunsFromDirectory(str(logdir))
    board.Reload()
    trials = _trials(exp)
    for trial_id, (params, rows) in trials.items():
        [run] = [r for r in board.Runs() if r.split("_")[0] == trial_id and "/" not in r]
        content = board.PluginRunToTagToContent(metadata.PLUGIN_NAME)[run]
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG])
        hparams = {k: v.string_value or v.number_value for k, v in start.hparams.items()}
        assert (hparams["model"], hparams["lr"], hparams["crop_size"]) == \
            ("unet", params["lr"], params["crop_size"])
        experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
        assert "ray/tune/best_val_miou" in {m.name.tag for m in experiment.metric_infos}
        curve = board.Scalars(run, "ray/tune/val_miou")
        assert [round(s.value, 5) for s in curve] == [round(r["val_miou"], 5) for r in rows]
        assert board.Images(f"{run}/tensorboard", "val/0")  # Lightning's validation images


def test_optuna_adds_proposed_trials_and_still_covers_the_grid(sweep):
    """The grid's point trains with the defaults; Optuna's sample is proposed within the
    search space (lr 1e-4..1e-2; crop sizes the images allow)."""
    from sweeps.grids import load_grid

    exp, _ = sweep
    params = [p for p, _ in _trials(exp).values()]
    defaults = [p for p in params if p["lr"] == 1e-3 and p["crop_size"] == 64]
    assert {p["point"] for p in defaults} == set(load_grid(str(exp.parent.parent / "tracked.yaml"))
                                                 .labels)
    proposed = [p for p in params if p not in defaults]
    assert len(proposed) == 1
    assert all(1e-4 <= p["lr"] <= 1e-2 and p["crop_size"] in (64,) for p in proposed)


# --- Ctrl-C, then --resume -------------------------------------------------------------------

STOPPED_EPOCHS = 4


@dataclass
class Stopped:
    exp: Path
    seconds: float  # from the SIGINT to the driver's exit
    code: int
    output: str
    mlflow_status: str  # the trial's MLflow run after the Ctrl-C
    wandb_runs: list[Path]  # the W&B offline runs after the Ctrl-C
    resumed_code: int
    resumed_output: str


def _mlflow_runs(exp: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{exp}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name(exp.name).experiment_id])


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, tiny_dataset_dir) -> Stopped:
    """A one-trial sweep with both trackers: one SIGINT to the driver once the trial has stored
    an epoch, then ``--resume`` to the end."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("stopped")
    grid = write_grid(root, "stopped", {"model": ["unet"], "augment": [False]},
                      epochs=STOPPED_EPOCHS)
    exp = root / "runs" / "stopped"
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--num-cpus", "1",
            "--tracker", "mlflow", "--tracker", "wandb", "--storage", str(root / "runs")]
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("MLFLOW_", "WANDB_"))]:
            mp.delenv(key)
        env = _tracker_env(root)
        with Sweep(args, root / "sweep.log", env) as sweep:
            sweep.poll(lambda: any(results(exp).values()), 300, "the trial's first epoch")
            os.kill(sweep.pid, signal.SIGINT)
            sent = time.monotonic()
            code = sweep.wait(120)
            seconds = time.monotonic() - sent
            output = sweep.output()
        [run] = _mlflow_runs(exp)
        wandb_runs = sorted((exp / "wandb").glob("offline-run-*"))
        resumed_code, resumed_output, _ = run_app(
            ["--name", "stopped", "--storage", str(root / "runs"), "--resume", "--no-report"],
            root / "resume.log", env=env)
    return Stopped(exp, seconds, code, output, run.info.status, wandb_runs, resumed_code,
                   resumed_output)


def test_ctrl_c_with_trackers_exits_at_once_and_ends_their_runs_killed(stopped):
    print(f"Ctrl+C with MLflow and W&B: exit code {stopped.code} after {stopped.seconds:.1f} s")
    assert stopped.code == 130, stopped.output[-3000:]
    assert stopped.seconds < 30, stopped.output[-3000:]
    assert stopped.mlflow_status == "KILLED"
    [run] = stopped.wandb_runs
    records = finished_records(run)
    [end] = [r.exit for r in records if r.HasField("exit")]
    assert end.exit_code == 130 and run_summary(records)["trial_status"] == "KILLED"


def test_resume_continues_the_trials_mlflow_and_wandb_runs(stopped):
    """One run per trial in each, every epoch in it, ended FINISHED with its best checkpoint."""
    from mlflow import MlflowClient

    assert stopped.resumed_code == 0, stopped.resumed_output[-3000:]
    [rows] = results(stopped.exp).values()
    trial_id = rows[-1]["trial_id"]
    epochs = list(range(1, STOPPED_EPOCHS + 1))
    [run] = _mlflow_runs(stopped.exp)
    assert run.info.status == "FINISHED"
    client = MlflowClient(f"sqlite:///{stopped.exp}/mlflow.db")
    logged = client.get_metric_history(run.info.run_id, "epoch")
    assert sorted({int(m.value) for m in logged}) == epochs  # a resume may train one twice
    assert client.list_artifacts(run.info.run_id, "best_checkpoint")

    runs = sorted((stopped.exp / "wandb").glob("offline-run-*"))
    assert runs[0] == stopped.wandb_runs[0] and len(runs) == 2
    before, after = (finished_records(run) for run in runs)
    assert {r.run.run_id for r in before + after if r.HasField("run")} == {trial_id}
    assert all(r.run.resume for r in after if r.HasField("run"))  # wandb.init(resume="allow")
    assert sorted({h["epoch"] for h in run_history(before) + run_history(after)}) == epochs
    [end] = [r.exit for r in after if r.HasField("exit")]
    assert end.exit_code == 0 and run_summary(after)["trial_status"] == "FINISHED"
    assert [r.artifact.type for r in after if r.HasField("artifact")] == ["model"]
