"""The report's parallel-coordinates plot: drawn when a sweep varied more than two settings,
with every trial that has a best val mIoU, and only then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.loading import Experiment
from analysis.plots import PLOTS, PlotContext, parallel_figure, varied_settings

PNG = b"\x89PNG\r\n\x1a\n"
BASE = {"model": "deeplab", "backbone": "resnet18", "aspp": True, "lr": 1e-3, "crop_size": 256,
        "epochs": 4}


def _experiment(configs: list[dict], miou: list[float]) -> Experiment:
    ids = [f"t{i}" for i in range(len(configs))]
    trials = pd.DataFrame({"trial_id": ids, "name": ids, "epochs_done": 2,
                           "best_val_miou": miou})
    return Experiment(Path("."), {}, trials, pd.DataFrame(), dict(zip(ids, configs)))


def _optuna_like() -> list[dict]:
    """Optuna's proposals over two grid points: model, backbone, ASPP, lr and crop all vary."""
    return [BASE,
            {**BASE, "lr": 3e-2, "crop_size": 128},
            {**BASE, "model": "unet", "backbone": None, "aspp": None, "lr": 2e-4},
            {**BASE, "model": "unet", "backbone": None, "aspp": None, "crop_size": 192}]


def test_the_settings_that_varied_are_found_in_config_order():
    assert varied_settings(_optuna_like()) == ["model", "backbone", "aspp", "lr", "crop_size"]
    assert varied_settings([BASE, BASE]) == []


def test_a_sweep_that_varied_more_than_two_settings_gets_the_plot(tmp_path):
    assert "parallel" in PLOTS  # the report runs it with every other plot
    exp = _experiment(_optuna_like(), [0.4, 0.1, 0.3, np.nan])  # the last one diverged
    [figure] = parallel_figure(PlotContext(exp, tmp_path))
    assert figure.path == tmp_path / "parallel_coordinates.png"
    assert figure.path.read_bytes()[:8] == PNG and figure.path.stat().st_size > 5000
    assert figure.trial_ids == ("t0", "t1", "t2")  # NaN has no colour: left out
    assert "5 settings" in figure.title


def test_two_varied_settings_are_left_to_the_switch_plots(tmp_path):
    configs = [BASE, {**BASE, "aspp": False}, {**BASE, "lr": 1e-2}, {**BASE, "aspp": False,
                                                                       "lr": 1e-2}]
    assert parallel_figure(PlotContext(_experiment(configs, [0.1, 0.2, 0.3, 0.4]),
                                       tmp_path)) == []


def test_without_two_scored_trials_the_plot_is_skipped_with_a_note(tmp_path):
    exp = _experiment(_optuna_like(), [0.4, np.nan, np.nan, np.nan])
    [figure] = parallel_figure(PlotContext(exp, tmp_path))
    assert not figure.written and figure.note.startswith("skipped: fewer than two trials")
