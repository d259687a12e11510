"""What Optuna is told about segsweep's trials (Ray's OptunaSearch, pinned Ray, subclassed in
sweeps/optuna_searcher.py): the best epoch's mIoU, PRUNED for a trial the scheduler stopped,
and a trial over a budget as infeasible. Driven through Ray's Searcher calls, without Tune."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from sweeps import optuna_store, search
from sweeps.grids import load_grid
from sweeps.objectives import REJECTED
from sweeps.search_space import build_space


def _searcher(objectives, budgets=None, costs=None, storage=None):
    grid = load_grid("homework")
    space = build_space(grid, [64])
    seeds = [space.seed(label, {"lr": 1e-3, "crop_size": 64}) for label in grid.labels]
    return search.optuna_searcher(space, seeds, objectives=objectives, budgets=budgets or {},
                                  costs=costs or {}, storage=storage, study_name="s")


def _row(point, **metrics):
    return {"point": point, "training_iteration": metrics.get("epoch", 1), **metrics}


def test_a_trial_is_told_its_best_epoch_not_its_last():
    searcher = _searcher(["miou"])
    config = searcher.suggest("t0")
    assert config["point"] == "unet/no-aug"
    for epoch, (miou, best) in enumerate([(0.3, 0.3), (0.5, 0.5), (0.2, 0.5)], start=1):
        searcher.on_trial_result("t0", _row("unet/no-aug", epoch=epoch, val_miou=miou,
                                            best_val_miou=best))
    searcher.on_trial_complete("t0", _row("unet/no-aug", epoch=3, epochs_planned=3,
                                          val_miou=0.2, best_val_miou=0.5))
    trial = searcher._ot_study.trials[0]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.5
    assert trial.user_attrs["label"] == "unet/no-aug"


def test_a_trial_the_scheduler_stopped_is_pruned():
    searcher = _searcher(["miou"])
    searcher.suggest("t0")
    searcher.on_trial_result("t0", _row("unet/no-aug", epoch=1, best_val_miou=0.1))
    searcher.on_trial_complete("t0", _row("unet/no-aug", epoch=1, epochs_planned=8,
                                          val_miou=0.1, best_val_miou=0.1))
    trial = searcher._ot_study.trials[0]
    assert trial.state == TrialState.PRUNED and trial.intermediate_values == {1: 0.1}


def test_a_diverged_trial_fails_and_an_errored_one_too():
    searcher = _searcher(["miou"])
    searcher.suggest("t0")
    searcher.suggest("t1")
    searcher.on_trial_result("t0", _row("unet/no-aug", epoch=1, best_val_miou=math.nan))
    searcher.on_trial_complete("t0", _row("unet/no-aug", epoch=2, epochs_planned=8,
                                          diverged=True, best_val_miou=0.1))
    searcher.on_trial_complete("t1", None, error=True)
    assert [t.state for t in searcher._ot_study.trials[:2]] == [TrialState.FAIL] * 2


def test_a_rejected_model_is_infeasible_and_off_the_front():
    costs = {"unet/no-aug": {"cpu_ms": 40.0, REJECTED: "cpu_ms 40ms > budget 30ms"},
             "unet/aug": {"cpu_ms": 40.0, REJECTED: "cpu_ms 40ms > budget 30ms"},
             "deeplab/resnet18/no-aspp/aug": {"cpu_ms": 20.0, REJECTED: None}}
    searcher = _searcher(["miou", "cpu_ms"], {"cpu_ms": 30.0}, costs)
    assert searcher.suggest("t0")["point"] == "unet/no-aug"
    searcher.on_trial_complete("t0", _row("unet/no-aug", epoch=0, epochs_planned=4,
                                          best_val_miou=math.nan, inference_ms_cpu=40.0,
                                          rejected="cpu_ms 40ms > budget 30ms"))
    searcher.suggest("t1")
    assert searcher.suggest("t2")["point"] == "deeplab/resnet18/no-aspp/aug"
    searcher.on_trial_complete("t2", _row("deeplab/resnet18/no-aspp/aug", epoch=4,
                                          epochs_planned=4, best_val_miou=0.4,
                                          inference_ms_cpu=20.0))
    over, _, within = searcher._ot_study.trials[:3]
    assert over.state == TrialState.COMPLETE and over.values == [0.0, 40.0]
    assert over.user_attrs[REJECTED] and over.constraints == {"cpu_ms": 10.0}
    assert within.values == [0.4, 20.0] and within.constraints == {"cpu_ms": -10.0}
    assert [t.number for t in searcher._ot_study.best_trials] == [within.number]


def test_the_stored_study_names_its_objectives(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    _searcher(["miou", "size_mb"], storage=url)
    study = optuna.load_study(study_name="s", storage=url)
    assert study.metric_names == ["miou", "size_mb"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert len(study.trials) == 6  # every grid point enqueued once
    # a study of the same name is replaced, not appended to
    optuna_store.start_study(url, "s", [{"lr": 1e-3}], ["maximize"], ["miou"])
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 1


@pytest.mark.parametrize("objectives", [["miou"], ["miou", "cpu_ms"]])
def test_the_searcher_survives_tunes_save_and_restore(tmp_path, objectives):
    searcher = _searcher(objectives)
    searcher.suggest("t0")
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = _searcher(objectives)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.objectives == objectives and "t0" in restored._ot_trials
