"""analysis.loading: the trials/history tables equal what the trials reported; broken,
running and interrupted sweeps still load and say what they left out."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import EPOCHS, N_TRIALS, result_rows, trial_dirs
from ray_state_helpers import StateTrial, write_state

from analysis.loading import TRIAL_COLUMNS, ExperimentError, load_experiment

slow = pytest.mark.slow  # for tests that read the tiny sweep, made once (about a minute)


def _same(a, b) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@slow
def test_trials_table_has_one_row_per_trial_with_the_reported_values(experiment, sweep_dir):
    trials = experiment.trials
    assert list(trials.columns) == list(TRIAL_COLUMNS)
    assert len(trials) == N_TRIALS and trials["trial_id"].is_unique
    assert experiment.skipped == []
    points = experiment.meta["points"]
    for folder in trial_dirs(sweep_dir):
        rows = result_rows(folder)
        t = trials.set_index("trial_id").loc[rows[-1]["trial_id"]]
        point = points[json.loads((folder / "params.json").read_text())["point"]]
        assert (t["model"], t["backbone"], t["aspp"], t["augment"]) == (
            point["model"], point["backbone"], point["aspp"], point["augment"])
        assert (t["lr"], t["crop_size"], t["epochs_planned"]) == (0.001, 48, EPOCHS)
        assert t["status"] == "TERMINATED" and not t["stopped_early"]
        assert t["epochs_done"] == len(rows) == EPOCHS
        for column in ("best_val_miou", "best_epoch", "train_minutes", "inference_ms_gpu",
                       "size_mb", "params", "hostname", "node_id"):
            assert _same(t[column], rows[-1][column]), column
        # CPU time: the trial's own figure is kept; the table's is the quiet after-sweep one
        assert _same(t["inference_ms_cpu_in_trial"], rows[-1]["inference_ms_cpu"])
        quiet = json.loads((sweep_dir / "inference_cpu.json").read_text())
        assert _same(t["inference_ms_cpu"], quiet[t["label"]]["ms"])
        assert t["inference_ms_cpu_low"] <= t["inference_ms_cpu"] <= t["inference_ms_cpu_high"]
        assert t["final_val_miou"] == rows[-1]["val_miou"]
        assert t["trial_dir"] == str(folder)


@slow
def test_history_is_one_row_per_trial_and_epoch_with_every_scalar(experiment, sweep_dir):
    history = experiment.history
    assert len(history) == N_TRIALS * EPOCHS
    assert not history.duplicated(["trial_id", "epoch"]).any()
    assert "val_confusion" not in history and "config" not in history
    for folder in trial_dirs(sweep_dir):
        for row in result_rows(folder):
            h = history[history["trial_id"].eq(row["trial_id"]) & history["epoch"].eq(row["epoch"])]
            assert len(h) == 1
            for key, value in row.items():
                if isinstance(value, (int, float, str)):
                    assert _same(h.iloc[0][key], value), key
            cm = experiment.confusion(row["trial_id"], row["epoch"])
            assert np.array_equal(cm, np.asarray(row["val_confusion"]))


@slow
def test_confusion_defaults_to_the_best_epoch_and_checkpoints_are_the_kept_best(experiment):
    for _, t in experiment.trials.iterrows():
        assert np.array_equal(experiment.confusion(t["trial_id"]),
                              experiment.confusion(t["trial_id"], t["best_epoch"]))
        meta = json.loads(Path(t["best_checkpoint"]).with_name("meta.json").read_text())
        assert meta["epoch"] == t["best_checkpoint_epoch"]  # Ray keeps the latest of equals
        assert meta["val_miou"] == t["best_val_miou"]
    with pytest.raises(KeyError, match="epoch 99"):
        experiment.confusion(experiment.trials["trial_id"][0], 99)


@slow
def test_broken_trial_files_are_skipped_and_named(sweep_copy):
    truncated, deleted, no_params, intact = trial_dirs(sweep_copy)
    lines = (truncated / "result.json").read_text().splitlines()
    (truncated / "result.json").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    shutil.rmtree(deleted)
    (no_params / "params.json").unlink()

    exp = load_experiment(sweep_copy)

    assert set(exp.trials["trial_dir"]) == {str(truncated), str(intact)}
    t = exp.trials.set_index("trial_dir").loc[str(truncated)]
    assert t["epochs_done"] == 1 and len(exp.curves(t["trial_id"])) == 1
    text = "\n".join(exp.skipped)
    assert f"{truncated.name}: result.json line 2 is not complete JSON" in text
    assert deleted.name.split("_")[0] + "_" + deleted.name.split("_")[1] in text
    assert "folder missing" in text
    assert f"{no_params.name}: params.json missing" in text
    assert len(exp.skipped) == 3


@slow
def test_a_running_sweep_loads_with_ray_status_and_pending_trials(sweep_copy):
    running, pending, *_ = trial_dirs(sweep_copy)
    lines = (running / "result.json").read_text().splitlines()
    (running / "result.json").write_text(lines[0] + "\n")
    for child in pending.iterdir():  # Ray makes the folder before the trial starts
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    state_file = next(sweep_copy.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        if running.name.startswith(trial["trial_id"]):
            trial["status"] = "RUNNING"
        if pending.name.startswith(trial["trial_id"]):
            trial["status"] = "PENDING"
        entry[0] = json.dumps(trial)
    state_file.write_text(json.dumps(state))

    exp = load_experiment(sweep_copy)

    t = exp.trials.set_index("trial_dir")
    assert (t.loc[str(running), "status"], t.loc[str(running), "epochs_done"]) == ("RUNNING", 1)
    p = exp.trials[exp.trials["status"] == "PENDING"].iloc[0]
    assert p["epochs_done"] == 0 and p["label"] and math.isnan(p["best_val_miou"])
    assert len(exp.trials) == N_TRIALS and len(exp.finished) == N_TRIALS - 1
    assert exp.skipped == []


@slow
def test_without_ray_state_status_comes_from_the_files(sweep_copy):
    errored, stopped, *_ = trial_dirs(sweep_copy)
    for state in sweep_copy.glob("experiment_state-*.json"):
        state.unlink()
    (errored / "error.txt").write_text("Traceback ...\nFloatingPointError: training diverged\n")
    lines = (stopped / "result.json").read_text().splitlines()
    (stopped / "result.json").write_text(lines[0] + "\n")

    exp = load_experiment(sweep_copy)

    t = exp.trials.set_index("trial_dir")
    assert t.loc[str(errored), "status"] == "ERROR"
    assert t.loc[str(errored), "error"] == "FloatingPointError: training diverged"
    assert t.loc[str(stopped), "status"] == "STOPPED"
    assert (exp.trials["status"] == "TERMINATED").sum() == N_TRIALS - 2
    assert any("no Ray experiment state" in n for n in exp.notes)


@slow
def test_a_trial_ray_terminated_before_its_epochs_ran_out_was_stopped_early(sweep_copy):
    stopped = trial_dirs(sweep_copy)[0]
    lines = (stopped / "result.json").read_text().splitlines()
    (stopped / "result.json").write_text(lines[0] + "\n")

    t = load_experiment(sweep_copy).trials.set_index("trial_dir").loc[str(stopped)]

    assert t["status"] == "TERMINATED" and t["stopped_early"]
    assert (t["epochs_done"], t["epochs_planned"]) == (1, EPOCHS)


@slow
def test_a_diverged_trial_keeps_its_epochs_and_says_why_it_ended(sweep_copy):
    folder = trial_dirs(sweep_copy)[0]
    last = result_rows(folder)[-1]
    marker = {"epoch": last["epoch"] + 1, "val_miou": math.nan, "diverged": True,  # as
              "failure": "training diverged at epoch 3: train loss nan",  # sweeps.trainable
              "point": last["point"], "trial_id": last["trial_id"], "done": True,
              "training_iteration": last["training_iteration"] + 1}
    with open(folder / "result.json", "a") as f:
        f.write(json.dumps(marker) + "\n")

    exp = load_experiment(sweep_copy)

    t = exp.trial(last["trial_id"])
    assert (t["status"], t["error"]) == ("DIVERGED", marker["failure"])
    assert t["epochs_done"] == EPOCHS and not t["stopped_early"]
    assert t["best_val_miou"] == last["best_val_miou"]
    assert len(exp.curves(last["trial_id"])) == EPOCHS  # the marker is not an epoch


def test_a_folder_that_is_not_an_experiment_is_refused_naming_it(tmp_path):
    with pytest.raises(ExperimentError, match=f"{tmp_path}.*no segsweep.json"):
        load_experiment(tmp_path)
    with pytest.raises(ExperimentError, match=f"{tmp_path / 'nope'}: no such folder"):
        load_experiment(tmp_path / "nope")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "segsweep.json").write_text("{}")
    with pytest.raises(ExperimentError, match="experiments inside it: inner"):
        load_experiment(tmp_path)
    with pytest.raises(ExperimentError, match="no 'points' mapping"):
        load_experiment(tmp_path / "inner")
    (tmp_path / "inner" / "segsweep.json").write_text("{not json")
    with pytest.raises(ExperimentError, match="unreadable"):
        load_experiment(tmp_path / "inner")


def _searched_sweep(path: Path, trials: list[tuple[str, str, dict, str | None]]) -> Path:
    """A stored Optuna sweep, written file by file: (trial id, folder, Tune's config, Ray's
    status or None: started after Ray last saved its state), 2 epochs each."""
    from segmodels.training.config import TrialConfig

    points = {"unet/aug": {"model": "unet", "augment": True},
              "deeplab/mobilenet_v3_small/no-aspp/aug": {
                  "model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": False}}
    path.mkdir(parents=True)
    (path / "segsweep.json").write_text(json.dumps(
        {"points": points, "fixed": {}, "trial_defaults": {**TrialConfig().to_dict(),
                                                            "epochs": 2}}))
    for trial_id, folder, config, _ in trials:
        (path / folder).mkdir()
        (path / folder / "params.json").write_text(json.dumps(config))
        (path / folder / "result.json").write_text("".join(
            json.dumps({"trial_id": trial_id, "point": config["point"], "epoch": e,
                        "val_miou": e / 10, "best_val_miou": e / 10, "best_epoch": e}) + "\n"
            for e in (1, 2)))
    write_state(path, [StateTrial(trial_id, folder, status, config)
                       for trial_id, folder, config, status in trials if status])
    return path


def test_every_trial_of_a_search_sweep_is_found_and_named_by_its_searched_values(tmp_path):
    mobile = "deeplab/mobilenet_v3_small/no-aspp/aug"
    same = {"point": mobile, "lr": 0.0031, "crop_size": 32}
    trials = [  # Optuna's trial ids are 8 hex digits; Ray renames a folder whose name is taken
        ("30f12c97", "30f12c97_deeplab_mobilenet_v3_small_no-aspp_aug", same, "TERMINATED"),
        ("9b1e0a44", "9b1e0a44_deeplab_mobilenet_v3_small_no-aspp_aug_3f2a", same, "TERMINATED"),
        ("c0ffee12", "c0ffee12_unet_aug", {"point": "unet/aug", "lr": 0.001, "crop_size": 64},
         "TERMINATED"),
        ("77aa01bc", "77aa01bc_deeplab_x", {"point": mobile, "lr": 0.0002, "crop_size": 64},
         None),  # started after Ray's last save: found by its params.json
    ]
    exp = load_experiment(_searched_sweep(tmp_path / "optuna", trials))

    assert exp.skipped == []
    t = exp.trials.set_index("trial_id")
    assert sorted(t.index) == sorted(trial_id for trial_id, *_ in trials)
    for trial_id, folder, config, _ in trials:
        row = t.loc[trial_id]
        assert row["trial_dir"] == str(tmp_path / "optuna" / folder)
        assert (row["label"], row["lr"], row["crop_size"]) == (
            config["point"], config["lr"], config["crop_size"])
        assert row["status"] == "TERMINATED" and row["epochs_done"] == 2
        assert row["name"].startswith(config["point"])
        assert f"lr={config['lr']:.2g}" in row["name"] and f"crop={config['crop_size']}" in \
            row["name"], row["name"]
        assert len(exp.curves(trial_id)) == 2
    assert exp.trials["name"].is_unique  # the two identical samples carry their ids
    assert t.loc["30f12c97", "name"] == f"{mobile} lr=0.0031 crop=32 [30f12c97]"
    assert t.loc["c0ffee12", "name"] == "unet/aug lr=0.001 crop=64"


def test_an_epoch_retried_after_a_lost_worker_keeps_the_retrys_row(tmp_path):
    # Tune writes an epoch's result before it fetches that epoch's checkpoint: a worker lost in
    # between is retried from the epoch before, and result.json holds that epoch twice. The
    # model that finished descends from the retry, so its row is the one the curves show.
    trial = ("c0ffee12", "c0ffee12_unet_aug", {"point": "unet/aug", "lr": 0.001,
                                               "crop_size": 64}, "TERMINATED")
    path = _searched_sweep(tmp_path / "retried", [trial])
    rows = [(1, 0.1, 4242), (2, 0.2, 4242), (2, 0.25, 5151)]  # (epoch, val_miou, worker pid)
    (path / trial[1] / "result.json").write_text("".join(
        json.dumps({"trial_id": trial[0], "point": "unet/aug", "epoch": e, "val_miou": v,
                    "best_val_miou": v, "best_epoch": e, "pid": pid}) + "\n"
        for e, v, pid in rows))
    exp = load_experiment(path)
    curve = exp.curves(trial[0])
    assert list(curve["epoch"]) == [1, 2]
    assert list(curve["val_miou"]) == [0.1, 0.25] and list(curve["pid"]) == [4242, 5151]
    t = exp.trials.set_index("trial_id").loc[trial[0]]
    assert t["epochs_done"] == 2 and t["best_val_miou"] == 0.25


def test_reading_a_stored_sweep_needs_neither_torch_nor_matplotlib():
    """``analysis.loading`` (what the CLI's intervals and ``python -m analysis``'s folder check
    use) starts without torch or matplotlib, so a wrong folder is refused at once."""
    import subprocess
    import sys

    probe = ("import sys, analysis, analysis.loading; "
             "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "False"]
