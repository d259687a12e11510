"""An Optuna sweep end to end, as a user runs it: ``tune_app.py --search optuna``, its driver
SIGKILLed mid-sweep, ``--resume``, the report. Optuna's trials have 8-hex-digit ids and may
share a grid point: every one must reach the report, named by its lr and crop size, and a
kill must lose none of its epochs (slow: starts Ray twice, about two minutes on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import (
    Sweep,
    assert_every_epoch_once_but_a_retried_one,
    run_app,
    write_grid,
)

from sweeps import ray_state

pytestmark = pytest.mark.slow
EPOCHS = 2


def _rows(exp: Path) -> dict[str, list[dict]]:
    """Trial folder -> the complete rows of its result.json."""
    out = {}
    for params in exp.glob("*/params.json"):
        result = params.with_name("result.json")
        lines = result.read_text().splitlines() if result.is_file() else []
        out[params.parent.name] = [json.loads(line) for line in lines if line.endswith("}")]
    return out


def _saved_status(exp: Path) -> dict[str, str | None]:
    """Trial folder -> status, from Ray's newest saved state (empty while it is written)."""
    try:
        return {t.folder: t.status for t in ray_state.read_trials(exp) if t.folder}
    except ray_state.RayStateError:
        return {}


def test_an_optuna_sweep_killed_and_resumed_reports_every_trial_by_its_values(
        tmp_path, tiny_dataset_dir, monkeypatch):
    grid = write_grid(tmp_path, "search", {"model": ["unet"], "augment": [False, True]})
    args = ["--grid", grid, "--name", "search", "--data", str(tiny_dataset_dir),
            "--search", "optuna", "--num-samples", "1", "--scheduler", "fifo",
            "--epochs", str(EPOCHS), "--crop-size", "32", "--batch-size", "4",
            "--inference-repeats", "1", "--cpus-per-trial", "1", "--num-cpus", "2",
            "--no-dashboard", "--storage", str(tmp_path / "runs")]
    exp = tmp_path / "runs" / "search"

    def kill_point() -> bool:  # a trial finished in Ray's saved state, another still to run
        status, rows = _saved_status(exp), _rows(exp)
        return "TERMINATED" in status.values() and any(
            len(rows.get(folder, [])) < EPOCHS for folder in status)

    with Sweep([*args, "--no-report"], tmp_path / "killed.log") as sweep:
        sweep.poll(kill_point, 300, "one trial TERMINATED, another unfinished")
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.proc.wait(timeout=30)
        assert sweep.wait_gone(30) == []
    before = _rows(exp)

    code, output, left = run_app([*args, "--resume"], tmp_path / "resumed.log")

    assert code == 0 and left == [], output[-4000:]
    trials = ray_state.read_trials(exp)
    assert len(trials) == 2 + 1, trials  # every grid point, plus Optuna's one sample
    assert all(t.status == "TERMINATED" for t in trials), trials
    after = _rows(exp)
    for folder, rows in before.items():  # nothing stored before the kill is lost ...
        assert after[folder][:len(rows)] == rows, folder
    for t in trials:  # ... and every epoch once (one the kill caught between its row and
        assert_every_epoch_once_but_a_retried_one(after[t.folder], EPOCHS)  # checkpoint: twice)
    _the_study_holds_every_trial_and_none_running(exp, trials, after)
    report = exp / "report"
    table = pd.read_csv(report / "trials.csv").set_index("trial_id")
    assert sorted(table.index) == sorted(t.trial_id for t in trials)
    assert table["name"].is_unique
    for t in trials:
        row = table.loc[t.trial_id]
        assert (row["lr"], row["crop_size"]) == (t.config["lr"], t.config["crop_size"])
        assert row["name"].startswith(t.config["point"]), row["name"]
        assert f"lr={t.config['lr']:.2g}" in row["name"] and "crop=32" in row["name"]
    history = pd.read_csv(report / "history.csv")
    assert history.groupby("trial_id")["epoch"].apply(sorted).to_dict() == {
        t.trial_id: list(range(1, EPOCHS + 1)) for t in trials}
    _every_trial_is_plotted(exp, set(table["name"]), tmp_path / "plots", monkeypatch)


def _the_study_holds_every_trial_and_none_running(exp: Path, trials, rows) -> None:
    """The Optuna study (sweeps/optuna_store.py) after the kill and --resume: each trial
    COMPLETE with its best epoch's val mIoU under the objective's name, none left RUNNING (the
    kill's are marked FAIL)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="search", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert TrialState.RUNNING not in {t.state for t in study.trials}, study.trials
    assert study.metric_names == ["miou"]
    values = {(t.user_attrs["label"], t.params["lr"]): t.value for t in study.trials
              if t.state == TrialState.COMPLETE}
    assert values == pytest.approx({(t.config["point"], t.config["lr"]):
                                    max(r["val_miou"] for r in rows[t.folder]) for t in trials})


def _every_trial_is_plotted(exp: Path, names: set[str], out: Path, monkeypatch) -> None:
    """The report's overview curves draw one line per trial, labelled by its name."""
    from matplotlib.axes import Axes

    from analysis import load_experiment
    from analysis.plots import PLOTS, PlotContext

    drawn, plot = [], Axes.plot

    def recording_plot(ax, *args, **kwargs):
        drawn.append(kwargs.get("label"))
        return plot(ax, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording_plot)
    out.mkdir()
    (figure,) = PLOTS["overview"](PlotContext(load_experiment(exp), out))
    assert figure.written and names <= set(drawn), (names, drawn)
    assert (exp / "report" / figure.path.name).is_file()  # the report has it too


def _cpu_ms_between_the_fastest_and_slowest(width: int, height: int) -> float:
    """A CPU budget some homework architectures meet and some do not: the geometric mean of
    the fastest and the slowest, timed here as the sweep times them (alone, one thread)."""
    import math

    from sweeps.grids import load_grid
    from sweeps.inference_pass import time_architectures

    fixed = {"inference_width": width, "inference_height": height, "inference_repeats": 1}
    timed = time_architectures(load_grid("homework").by_label(), fixed, threads=1)
    figures = [t["ms"] for t in timed.values()]
    return math.sqrt(min(figures) * max(figures))


def test_a_budgeted_search_never_trains_an_architecture_over_it_and_fronts_the_rest(
        tmp_path, tiny_dataset_dir):
    """--objective miou --objective cpu_ms --max-cpu-ms X on the homework grid: each
    architecture measured once before training, those over X rejected (never trained, listed
    in the report), the report's front the non-dominated trials within X, and a --resume
    measures nothing again."""
    budget = round(_cpu_ms_between_the_fastest_and_slowest(64, 48), 1)
    args = ["--grid", "homework", "--name", "budget", "--data", str(tiny_dataset_dir),
            "--search", "optuna", "--num-samples", "3", "--objective", "miou",
            "--objective", "cpu_ms", "--max-cpu-ms", str(budget), "--epochs", "2",
            "--crop-size", "32", "--batch-size", "4", "--inference-repeats", "1",
            "--inference-size", "64x48", "--cpus-per-trial", "1", "--num-cpus", "2",
            "--no-dashboard", "--storage", str(tmp_path / "runs")]
    exp = tmp_path / "runs" / "budget"
    code, output, _ = run_app(args, tmp_path / "search.log")
    assert code == 0, output[-4000:]
    assert "scheduler FIFO (the default with several objectives" in output
    assert output.count("Measuring cpu_ms") == 1

    costs = json.loads((exp / "costs.json").read_text())
    assert len(costs) == 14  # every combination of the homework grid's axes
    over = {label for label, c in costs.items() if c["cpu_ms"] > budget}
    assert over and over != set(costs), (budget, costs)
    assert {label for label, c in costs.items() if c["rejected"]} == over
    assert f"rejected, never trained: {sorted(over)[0]}" in output or any(
        f"rejected, never trained: {label}" in output for label in over)

    trials_to_train = 3 + len(set(load_homework()) - over)  # samples + grid points within
    assert f"Sweep 'budget': {trials_to_train} trial(s)" in output
    table = pd.read_csv(exp / "report" / "trials.csv")
    points = {t.trial_id: t.config["point"] for t in ray_state.read_trials(exp)}
    table["point"] = table["trial_id"].map(points)
    assert len(table) >= 3 + len(set(load_homework()) - over)
    for _, row in table[table["point"].isin(over)].iterrows():  # proposed, never trained
        assert row["status"] == "REJECTED", row.to_dict()
        folder = next(exp.glob(f"{row['trial_id']}_*"))
        assert not list(folder.glob("checkpoint_*")), folder
    trained = table[table["status"] != "REJECTED"]
    assert len(trained) and (trained["inference_ms_cpu"] <= budget).all()

    # the report's front is the brute-force non-dominated set of the trained trials
    def dominated(a, b) -> bool:  # b dominates a
        return (b.best_val_miou >= a.best_val_miou and b.inference_ms_cpu <= a.inference_ms_cpu
                and (b.best_val_miou > a.best_val_miou
                     or b.inference_ms_cpu < a.inference_ms_cpu))

    rows = list(trained.itertuples())
    expected = {a.trial_id for a in rows if not any(dominated(a, b) for b in rows)}
    front = pd.read_csv(exp / "report" / "front.csv")
    assert set(front["trial_id"]) == expected
    page = (exp / "report" / "report.html").read_text()
    assert "Search within a budget" in page and sorted(over)[0] in page

    import optuna

    study = optuna.load_study(study_name="budget", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert study.metric_names == ["miou", "cpu_ms"]

    code, output, _ = run_app([*args, "--resume", "--no-report"], tmp_path / "resumed.log")
    assert code == 0, output[-4000:]
    assert "Measuring" not in output  # every architecture's figures were kept


def load_homework() -> list[str]:
    from sweeps.grids import load_grid

    return load_grid("homework").labels
