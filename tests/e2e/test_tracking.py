"""Where sweep users already look, end to end and offline: one small Optuna sweep run with
``--tracker mlflow --tracker wandb`` and ``WANDB_MODE=offline`` leaves an MLflow store, W&B
offline runs, an Optuna study and TensorBoard HParams, each holding every trial, at the places
the CLI prints (slow: starts Ray once, two trials of two epochs, about a minute on 2 cores)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import ROOT, write_grid

from sweeps.search import trial_label

pytestmark = pytest.mark.slow
BUILT_ONCE = ("sweep",)  # its tests share a worker (tests/conftest.py)
EPOCHS = 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_dataset_dir) -> tuple[Path, str]:
    """(experiment folder, the CLI's output) of a finished sweep: the grid's one point plus one
    Optuna sample."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("tracking")
    grid = write_grid(root, "tracked", {"model": ["unet"], "augment": [False]})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env |= {"WANDB_MODE": "offline", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), "--epochs", str(EPOCHS),
            "--crop-size", "64", "--batch-size", "4", "--inference-repeats", "1", "--no-report",
            "--search", "optuna", "--num-samples", "1", "--scheduler", "fifo",
            "--num-cpus", "2", "--tracker", "mlflow", "--tracker", "wandb",
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
        params, rows = trials[run.info.run_name]
        assert run.info.status == "FINISHED"
        assert run.data.params["model"] == "unet"
        assert float(run.data.params["lr"]) == params["lr"]
        assert int(run.data.params["crop_size"]) == params["crop_size"]
        history = client.get_metric_history(run.info.run_id, "val_miou")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            [(r["epoch"], pytest.approx(r["val_miou"])) for r in rows]


def _wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` file: W&B's header, then LevelDB's log format
    (32 KiB blocks of chunks, each with a 7-byte header: checksum, length, type)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, payload = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk  # full/first, else middle/last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            yield record


def test_wandb_offline_runs_hold_every_trials_settings_and_metrics(sweep):
    exp, output = sweep
    pattern = _printed(output, r"W&B \(offline\): wandb sync (\S+)")
    runs = sorted(Path("/").glob(pattern.lstrip("/")))
    trials = _trials(exp)
    assert len(runs) == len(trials)
    for run in runs:
        [log] = run.glob("run-*.wandb")
        # W&B's service process may still be writing the offline file just after the sweep
        # exits on a busy machine: read it until it holds every epoch (at most 30 s).
        deadline = time.monotonic() + 30
        while True:
            try:
                records = list(_wandb_records(log))
            except Exception:  # noqa: BLE001 - a record caught mid-write: read again
                records = []
            done = sum(r.HasField("history") for r in records) >= EPOCHS
            if done or time.monotonic() > deadline:
                break
            time.sleep(1)
        [start] = [r.run for r in records if r.HasField("run")]
        params, rows = trials[start.run_id]
        config = {item.key: json.loads(item.value_json) for item in start.config.update}
        assert (config["model"], config["lr"], config["crop_size"]) == \
            ("unet", params["lr"], params["crop_size"])
        history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in r.history.item}
                   for r in records if r.HasField("history")]
        assert [(h["epoch"], h["val_miou"]) for h in history] == \
            [(r["epoch"], pytest.approx(r["val_miou"])) for r in rows]


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
