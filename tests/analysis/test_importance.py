"""analysis.importance: on a stored study where one parameter decides an objective and another
adds a trace, the deciding one ranks first with a small permutation p (single- and
multi-objective, directions honoured), conditional parameters are assessed over the trials
that set them, and a study too small, missing or unreadable gives a note instead of a crash."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from search_helpers import many_trials, quick_storage, write_search_sweep

from analysis.importance import (
    MIN_TRIALS,
    assessed_lines,
    param_importances,
    read_study,
    sweep_importance,
)
from analysis.loading import Experiment, load_experiment
from sweeps.storage import STUDY_FILE


def _experiment(path: Path, objectives: list[str] | None, name: str = "s") -> Experiment:
    settings = {"search": "optuna", "name": name}
    if objectives is not None:
        settings["objectives"] = objectives
    path.mkdir(parents=True, exist_ok=True)
    (path / "segsweep.json").write_text(json.dumps({"points": {}, "settings": settings}))
    return Experiment(path, {"points": {}, "settings": settings}, pd.DataFrame(),
                      pd.DataFrame(), {})


def _store(path: Path, directions: list[str], trials: list[tuple[dict, list[float]]],
           metric_names: list[str] | None = None, name: str = "s") -> None:
    """The study in ``path``'s optuna.db: one completed trial per (params, values)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = quick_storage(path / STUDY_FILE)
    study = optuna.create_study(storage=storage, study_name=name, directions=directions)
    if metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.set_metric_names(metric_names)
    distributions = _distributions()
    for params, values in trials:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: distributions[k] for k in params}, values=values))
    storage.engine.dispose()


def _distributions() -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0),
            "model": CategoricalDistribution(["unet", "deeplab"]),
            "backbone": CategoricalDistribution(["resnet18", "vgg11_bn"])}


N = 60  # the top is then 10%: 6 trials


def _xy_trials(seed: int, conditional: bool = False) -> list[tuple[dict, list[float]]]:
    """x, y uniform in [0, 1]; two objectives, each with its own best and worst six trials.

    gain (maximised): the best six have x in [0.95, 1], y anywhere; the worst six y in
    [0, 0.05], x anywhere. cost (minimised): the cheapest six have y in [0.95, 1]; the dearest
    x in [0, 0.05]. Every other trial sits in between, at random. So x decides gain and y cost,
    and read with the wrong sign (the worst taken for the best) each would swap.
    ``conditional``: a model, and a backbone only where the model is deeplab."""
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(N):
        x, y = rng.random(2)
        gain, cost = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)
        if i < 6:
            x, gain = rng.uniform(0.95, 1.0), 1 + rng.random()
        elif i < 12:
            y, gain = rng.uniform(0.0, 0.05), -1 - rng.random()
        elif i < 18:
            y, cost = rng.uniform(0.95, 1.0), -1 - rng.random()
        elif i < 24:
            x, cost = rng.uniform(0.0, 0.05), 1 + rng.random()
        params = {"x": x, "y": y}
        if conditional:
            params["model"] = str(rng.choice(["unet", "deeplab"]))
            if params["model"] == "deeplab":
                params["backbone"] = str(rng.choice(["resnet18", "vgg11_bn"]))
        trials.append((params, [gain, cost]))
    return trials


def _first(trials: list[tuple[dict, list[float]]]) -> list[tuple[dict, list[float]]]:
    """The trials with their first objective alone."""
    return [(params, values[:1]) for params, values in trials]


def _ranked(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    return frame[frame["objective"] == objective].set_index("parameter")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_deciding_parameter_ranks_first_in_a_single_objective_study(tmp_path, seed):
    """value = f(x) + a trace of y, maximised."""
    exp = _experiment(tmp_path / "s", None)  # recorded before objectives: mIoU alone
    rng = np.random.default_rng(seed)
    trials = [({"x": x, "y": y}, [x + 1e-3 * y]) for x, y in rng.random((N, 2))]
    _store(exp.path, ["maximize"], trials)

    result = sweep_importance(exp)

    assert result.notes == [f"assessed over the {N} of the study's {N} trials that trained to "
                            "the end"]
    ranked = _ranked(result.frame, "miou")
    assert ranked.index[0] == "x" and ranked.loc["x", "p"] <= 0.05
    assert ranked["importance"].sum() == pytest.approx(1.0)
    assert ranked["set_in"].tolist() == ranked["trials"].tolist() == [N, N]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_best_trials_are_read_in_each_objectives_direction(tmp_path, seed):
    exp = _experiment(tmp_path / "s", ["miou", "cpu_ms"])
    _store(exp.path, ["maximize", "minimize"], _xy_trials(seed), metric_names=["miou", "cpu_ms"])

    frame = sweep_importance(exp).frame

    assert list(dict.fromkeys(frame["objective"])) == ["miou", "cpu_ms"]
    miou, cpu = _ranked(frame, "miou"), _ranked(frame, "cpu_ms")
    assert miou.index[0] == "x" and miou.loc["x", "p"] <= 0.05
    assert cpu.index[0] == "y" and cpu.loc["y", "p"] <= 0.05


def test_a_single_maximised_objective_is_read_in_its_direction(tmp_path):
    exp = _experiment(tmp_path / "s", None)
    _store(exp.path, ["maximize"], _first(_xy_trials(0)))
    assert _ranked(sweep_importance(exp).frame, "miou").index[0] == "x"  # y if read as minimised


def test_without_metric_names_the_sweeps_objectives_name_the_values(tmp_path):
    exp = _experiment(tmp_path / "s", ["miou", "size_mb"])
    _store(exp.path, ["maximize", "minimize"], _xy_trials(0)[:20])
    assert list(dict.fromkeys(sweep_importance(exp).frame["objective"])) == ["miou", "size_mb"]


def test_a_parameter_set_in_some_trials_only_is_assessed_over_those(tmp_path):
    exp = _experiment(tmp_path / "s", None)
    _store(exp.path, ["maximize"], _first(_xy_trials(0, conditional=True)))

    importance = sweep_importance(exp)

    ranked = _ranked(importance.frame, "miou")
    assert set(ranked.index) == {"x", "y", "model", "backbone"}
    assert 0 < ranked.loc["backbone", "set_in"] < ranked.loc["backbone", "trials"] == N
    assert ranked.loc["model", "set_in"] == N
    lines = assessed_lines(importance)
    [backbone] = [line for line in lines if line.startswith("backbone:")]
    assert f"set in {ranked.loc['backbone', 'set_in']} of {N} completed trials (conditional" \
        in backbone
    assert f"x: set in {N} of {N} completed trials" in lines


def test_too_few_completed_trials_give_a_note_not_a_crash(tmp_path):
    exp = _experiment(tmp_path / "s", ["miou", "cpu_ms"])
    _store(exp.path, ["maximize", "minimize"], _xy_trials(0)[:MIN_TRIALS - 1],
           metric_names=["miou", "cpu_ms"])
    result = sweep_importance(exp)
    assert result.frame.empty and list(result.frame.columns) == [
        "objective", "parameter", "importance", "p", "set_in", "trials"]
    assert result.notes[1:] == [
        f"miou: not enough completed trials to assess importance ({MIN_TRIALS - 1}; at least "
        f"{MIN_TRIALS} needed)",
        f"cpu_ms: not enough completed trials to assess importance ({MIN_TRIALS - 1}; at "
        f"least {MIN_TRIALS} needed)"]


def test_an_empty_missing_or_unreadable_study_gives_a_note(tmp_path):
    import optuna

    exp = _experiment(tmp_path / "empty", None)
    optuna.create_study(storage=f"sqlite:///{exp.path / STUDY_FILE}", study_name="s")
    assert sweep_importance(exp).notes[1:] == [
        "miou: not enough completed trials to assess importance (0; at least 10 needed)"]

    missing = _experiment(tmp_path / "missing", None)
    assert sweep_importance(missing).notes == [
        f"no Optuna study at {missing.path / STUDY_FILE}: no importances"]

    broken = _experiment(tmp_path / "broken", None)
    (broken.path / STUDY_FILE).write_bytes(b"not a database")
    [note] = sweep_importance(broken).notes
    assert note.startswith(f"the Optuna study in {broken.path / STUDY_FILE} could not be read")


def test_reading_the_study_leaves_its_file_untouched(tmp_path):
    exp = _experiment(tmp_path / "s", None, name="renamed")  # the file's only study is used
    _store(exp.path, ["maximize"], _first(_xy_trials(0))[:20], name="other")
    file = exp.path / STUDY_FILE
    before = (file.read_bytes(), file.stat().st_mtime_ns)
    study, _ = read_study(file, "renamed")
    assert len(study.trials) == 20
    assert (file.read_bytes(), file.stat().st_mtime_ns) == before
    assert sorted(p.name for p in exp.path.iterdir()) == [STUDY_FILE, "segsweep.json"]


def test_an_importance_nothing_explains_is_said_so(tmp_path):
    """Every trial scores the same: no parameter sets the best apart."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for x in np.linspace(0, 1, 12):
        study.add_trial(optuna.trial.create_trial(
            params={"x": x}, distributions={"x": FloatDistribution(0, 1)}, value=0.5))
    result = param_importances(study, ["miou"], permutations=5)
    assert result.frame["importance"].tolist() == [0.0]
    assert result.notes == ["miou: no parameter sets its best trials apart from the rest "
                            "(every importance 0)"]


def test_rejected_pruned_and_failed_trials_are_left_out_and_counted(tmp_path):
    """A rejected trial is told COMPLETE with mIoU 0 (sweeps/optuna_searcher.py): it never
    trained, so it is no evidence of what its parameters do to mIoU."""
    import optuna

    path = write_search_sweep(tmp_path / "s", trials=many_trials(30, seed=1))
    storage = quick_storage(path / STUDY_FILE)
    study = optuna.load_study(study_name="search", storage=storage)
    for state in (optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL):
        study.add_trial(optuna.trial.create_trial(state=state))
    storage.engine.dispose()

    result = sweep_importance(load_experiment(path))

    assert result.notes == ["assessed over the 25 of the study's 32 trials that trained to the "
                            "end; left out: 5 rejected over a budget, 1 PRUNED, 1 FAIL"]
    assert set(result.frame["trials"]) == {25}
    assert _ranked(result.frame, "cpu_ms").index[0] == "point"
