"""A budgeted Optuna sweep end to end, as a user runs it: ``tune_app.py --search optuna`` with
two objectives and a budget, its driver SIGKILLed mid-sweep, ``--resume``, the report. Optuna's
trials have 8-hex-digit ids and may share a grid point: every one must reach the report, named
by its lr and crop size, and a kill must lose none of its epochs (slow: starts Ray twice)."""

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


def _saved_trials(exp: Path) -> list:
    """The trials with a folder in Ray's newest saved state (none while it is written)."""
    try:
        return [t for t in ray_state.read_trials(exp) if t.folder]
    except ray_state.RayStateError:
        return []


def _the_study_holds_every_trial_and_none_running(exp: Path, trials, rows) -> None:
    """The Optuna study (sweeps/optuna_store.py) after the kill and --resume: each trial
    COMPLETE with its best epoch's val mIoU under the objective's name, none left RUNNING (the
    kill's are marked FAIL)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=exp.name, storage=f"sqlite:///{exp / 'optuna.db'}")
    assert TrialState.RUNNING not in {t.state for t in study.trials}, study.trials
    assert study.metric_names == ["miou", "cpu_ms"]
    values = {(t.user_attrs["label"], t.params["lr"]): t.values[0] for t in study.trials
              if t.state == TrialState.COMPLETE and t.user_attrs["label"] in {
                  u.config["point"] for u in trials}}
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


def test_a_budgeted_search_killed_and_resumed_trains_nothing_over_it_loses_nothing(
        tmp_path, tiny_dataset_dir, monkeypatch):
    """--objective miou --objective cpu_ms --max-cpu-ms X on the homework grid, its driver
    SIGKILLed once a trial finished and another has not, then --resume: each architecture is
    measured once before training (the resume measures nothing), those over X are rejected
    (never trained, listed in the report), no epoch stored before the kill is lost or trained
    twice but the one a kill may repeat, every trial reaches the report named by its values,
    and the report's front is the non-dominated trials within X."""
    budget = round(_cpu_ms_between_the_fastest_and_slowest(64, 48), 1)
    args = ["--grid", "homework", "--name", "budget", "--data", str(tiny_dataset_dir),
            "--search", "optuna", "--num-samples", "3", "--objective", "miou",
            "--objective", "cpu_ms", "--max-cpu-ms", str(budget), "--epochs", str(EPOCHS),
            "--crop-size", "32", "--batch-size", "4", "--inference-repeats", "1",
            "--inference-size", "64x48", "--cpus-per-trial", "1", "--num-cpus", "2",
            "--no-dashboard", "--storage", str(tmp_path / "runs")]
    exp = tmp_path / "runs" / "budget"

    def over_budget() -> set[str]:
        costs = json.loads((exp / "costs.json").read_text())
        return {label for label, c in costs.items() if c["rejected"]}

    def kill_point() -> bool:  # a trained trial finished in Ray's saved state, another not
        if not (exp / "costs.json").is_file():
            return False
        over, rows = over_budget(), _rows(exp)
        status = {t.folder: t.status for t in _saved_trials(exp)
                  if t.config.get("point") not in over}
        return "TERMINATED" in status.values() and any(
            len(rows.get(folder, [])) < EPOCHS for folder in status)

    with Sweep([*args, "--no-report"], tmp_path / "killed.log") as sweep:
        sweep.poll(kill_point, 300, "one trained trial TERMINATED, another unfinished")
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.proc.wait(timeout=30)
        assert sweep.wait_gone(30) == []
        output = sweep.output()
    before = _rows(exp)
    assert "scheduler FIFO (the default with several objectives" in output
    assert output.count("Measuring cpu_ms") == 1

    costs = json.loads((exp / "costs.json").read_text())
    assert len(costs) == 14  # every combination of the homework grid's axes
    over = {label for label, c in costs.items() if c["cpu_ms"] > budget}
    assert over and over != set(costs), (budget, costs)
    assert over_budget() == over
    assert any(f"rejected, never trained: {label}" in output for label in over), output
    within = set(load_homework()) - over
    assert f"Sweep 'budget': {3 + len(within)} trial(s)" in output  # samples + grid points

    code, output, left = run_app([*args, "--resume"], tmp_path / "resumed.log")

    assert code == 0 and left == [], output[-4000:]
    assert "Measuring" not in output  # every architecture's figures were kept
    trials = ray_state.read_trials(exp)
    assert len(trials) == 3 + len(within), trials
    assert all(t.status == "TERMINATED" for t in trials), trials
    after = _rows(exp)
    for folder, rows in before.items():  # nothing stored before the kill is lost ...
        assert after[folder][:len(rows)] == rows, folder
    rejected = {t.trial_id for t in trials if t.config["point"] in over}
    trained = [t for t in trials if t.trial_id not in rejected]
    for t in trained:  # ... and every epoch once (one the kill caught between its row and
        assert_every_epoch_once_but_a_retried_one(after[t.folder], EPOCHS)  # checkpoint: twice)
    _the_study_holds_every_trial_and_none_running(exp, trained, after)

    report = exp / "report"
    table = pd.read_csv(report / "trials.csv").set_index("trial_id")
    assert sorted(table.index) == sorted(t.trial_id for t in trials)
    assert table["name"].is_unique
    for t in trials:
        row = table.loc[t.trial_id]
        if t.trial_id in rejected:  # proposed by Optuna, never trained
            assert row["status"] == "REJECTED", row.to_dict()
            assert not list(Path(exp / t.folder).glob("checkpoint_*")), t.folder
            continue
        assert (row["lr"], row["crop_size"]) == (t.config["lr"], t.config["crop_size"])
        assert row["name"].startswith(t.config["point"]), row["name"]
        assert f"lr={t.config['lr']:.2g}" in row["name"] and "crop=32" in row["name"]
        assert row["inference_ms_cpu"] <= budget
    history = pd.read_csv(report / "history.csv")
    assert history[history["trial_id"].isin([t.trial_id for t in trained])].groupby(
        "trial_id")["epoch"].apply(sorted).to_dict() == {
        t.trial_id: list(range(1, EPOCHS + 1)) for t in trained}

    # the report's front is the brute-force non-dominated set of the trained trials
    def dominated(a, b) -> bool:  # b dominates a
        return (b.best_val_miou >= a.best_val_miou and b.inference_ms_cpu <= a.inference_ms_cpu
                and (b.best_val_miou > a.best_val_miou
                     or b.inference_ms_cpu < a.inference_ms_cpu))

    rows = list(table.loc[[t.trial_id for t in trained]].reset_index().itertuples())
    expected = {a.trial_id for a in rows if not any(dominated(a, b) for b in rows)}
    front = pd.read_csv(report / "front.csv")
    assert set(front["trial_id"]) == expected
    page = (report / "report.html").read_text()
    assert "Search within a budget" in page and sorted(over)[0] in page
    _every_trial_is_plotted(exp, set(table.loc[[t.trial_id for t in trained], "name"]),
                            tmp_path / "plots", monkeypatch)


def load_homework() -> list[str]:
    from sweeps.grids import load_grid

    return load_grid("homework").labels
