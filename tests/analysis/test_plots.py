"""analysis.plots: every builder writes its PNG from the tiny sweep, or says why it skipped."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from analysis_helpers import trial_dirs

from analysis.loading import load_experiment
from analysis.plots import PLOTS, PlotContext, build_plots

pytestmark = pytest.mark.slow  # reads the tiny sweep (made once, about a minute)
PNG = b"\x89PNG\r\n\x1a\n"


def written(figures) -> dict[str, object]:
    return {f.key: f for f in figures if f.written}


def test_every_plot_of_the_tiny_sweep_is_written(experiment, tmp_path):
    figures = build_plots(experiment, tmp_path, baseline=0.05)
    assert not [f for f in figures if f.note.startswith("failed")]
    keys = set(written(figures))
    assert {"overview", "tradeoff_train_minutes", "tradeoff_inference", "tradeoff_size_mb",
            "per_class_iou", "confusion"} <= keys
    # the rule, not labels: two augmentation pairs and two ASPP pairs in this grid
    assert sorted(k for k in keys if k.startswith("switch_")) == [
        "switch_aspp_deeplab_mobilenet_v3_small_aug",
        "switch_aspp_deeplab_mobilenet_v3_small_no_aug",
        "switch_augment_deeplab_mobilenet_v3_small_aspp",
        "switch_augment_deeplab_mobilenet_v3_small_no_aspp"]
    for figure in written(figures).values():
        assert figure.path.parent == tmp_path and figure.title
        assert figure.path.read_bytes()[:8] == PNG and figure.path.stat().st_size > 5000
    [scheduler] = [f for f in figures if f.key == "scheduler"]
    assert not scheduler.written
    assert scheduler.note == "skipped: no trial was stopped early (scheduler: fifo)"


def test_plots_whose_trials_are_absent_are_skipped_with_a_note(sweep_copy, tmp_path):
    for folder in trial_dirs(sweep_copy)[2:]:  # keep only the two trials without ASPP
        shutil.rmtree(folder)
    figures = build_plots(load_experiment(sweep_copy), tmp_path / "out")
    notes = {f.key: f.note for f in figures if not f.written}
    assert notes["switch_aspp"] == "skipped: no two trials differ only in aspp"
    assert "switch_augment_deeplab_mobilenet_v3_small_no_aspp" in written(figures)
    assert not any(k.startswith("switch_aspp") for k in written(figures))
    empty = dataclasses.replace(load_experiment(sweep_copy))
    empty.trials = empty.trials.assign(epochs_done=0)  # as if no epoch had finished yet
    empty.history = empty.history.iloc[0:0]
    figures = build_plots(empty, tmp_path / "none")
    assert not any(f.written for f in figures) and all(f.note.startswith("skipped") for f in
                                                       figures)


def test_stopped_early_trials_get_the_scheduler_bars(experiment, tmp_path):
    asha = dataclasses.replace(experiment)
    first = asha.trials.index[0]
    asha.trials = asha.trials.copy()
    asha.trials.loc[first, ["epochs_done", "stopped_early"]] = (1, True)
    [figure] = PLOTS["scheduler"](PlotContext(asha, tmp_path))
    assert figure.written and figure.path.name == "scheduler_epochs.png"
