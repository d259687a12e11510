"""ASHA stopped trials after 1 of 3 epochs, and the report ranked one of them "fastest
to train" on its one epoch. On a stored sweep where that happened, training time is compared
at equal work (projected to the planned epochs), the stopped trials stay in every ranking,
and a pair verdict from unequal epochs says so first."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_helpers import ASHA_REASON, write_asha_sweep

from analysis import plots
from analysis.comparisons import course_models, find_pairs
from analysis.findings import compare_pair, describe_scheduler, describe_tradeoffs
from analysis.loading import load_experiment
from analysis.rankings import pareto_front, ranking_lines, rankings_table
from sweeps.equal_work import PROJECTED

STOPPED = "deeplab/resnet18/aspp/aug"  # 1 of 3 epochs in 0.185 min: 0.555 min projected
FASTEST = "deeplab/mobilenet_v3_small/aspp/aug"  # 3 of 3 epochs in 0.45 min


@pytest.fixture
def asha(tmp_path):
    return load_experiment(write_asha_sweep(tmp_path / "asha"))


def test_trials_keep_raw_minutes_beside_the_projected_ones(asha):
    t = asha.trials.set_index("name")
    assert t.loc[STOPPED, ["epochs_done", "stopped_early"]].tolist() == [1, True]
    assert t.loc[STOPPED, "train_minutes"] == pytest.approx(0.185)  # what it trained
    assert t.loc[STOPPED, PROJECTED] == pytest.approx(0.555)  # 0.185 per epoch x 3
    assert t.loc[FASTEST, PROJECTED] == t.loc[FASTEST, "train_minutes"] == pytest.approx(0.45)


def test_a_stopped_trial_is_ranked_by_projected_minutes_never_fastest_for_stopping(asha):
    models, _ = course_models(asha.trials)
    assert STOPPED in set(models["name"])  # not dropped
    lines = describe_tradeoffs(models, tolerance=0.05)
    assert f"Fastest to train: {FASTEST} (0.45 min)." in lines
    assert any(line.startswith("Training times of models that trained fewer epochs")
               and f"{STOPPED} projected from 1 of 3 epochs" in line for line in lines)
    assert ranking_lines(models, PROJECTED) == [
        f"1. {FASTEST} (0.45 min)",
        f"2. {STOPPED} (0.555 min, projected from 1 of 3 epochs)",
        "3. unet/aug (0.9 min)"]
    ranks = rankings_table(asha.finished).query(f"axis == '{PROJECTED}'").set_index("name")
    assert ranks.loc[STOPPED, ["rank", "note"]].tolist() == [2, "projected from 1 of 3 epochs"]
    assert ranks.loc["unet/no-aug", "note"] == "projected from 1 of 3 epochs"
    assert pareto_front(models, PROJECTED) == [FASTEST]  # on raw minutes STOPPED would join it


def test_the_training_time_plot_puts_the_stopped_trial_at_its_projected_minutes(
        asha, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    figures = plots.tradeoff_figures(plots.PlotContext(asha, tmp_path))
    [figure] = [f for f in figures if f.key == "tradeoff_train_minutes"]
    assert f"training time projected to the planned epochs for {STOPPED}" in figure.note
    ax = drawn[[f.key for f in figures].index("tradeoff_train_minutes")].axes[0]
    labels = {text.get_text(): text.xy for text in ax.texts}
    assert labels[f"{STOPPED} (projected from 1 of 3 epochs)"][0] == pytest.approx(0.555)
    assert labels[FASTEST][0] == pytest.approx(0.45)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(entry.startswith("fewer epochs than planned: time projected") for entry in legend)
    assert ax.get_xlabel() == "training time for the planned epochs (min)"


def test_a_pair_verdict_from_unequal_epochs_says_so_first(asha):
    [pair] = find_pairs(asha.configs, "augment")
    lines = compare_pair(asha.trials, asha.history, pair, tolerance=0.05, scheduler="asha")
    assert lines[0] == ("Unequal work: unet/no-aug trained 1 of 3 epochs (stopped early by "
                        "ASHA), unet/aug 3 of 3; this comparison is provisional.")
    assert lines[1] == ("Over the same epochs (epoch 1 of each): best val mIoU 0.190 with "
                        "augmentation vs 0.140 without augmentation.")
    assert not any(line.startswith("Provisional:") for line in lines)  # said once, first


def test_the_scheduler_and_why_it_ran_are_named_for_new_and_old_records(asha):
    stopped = asha.trials
    assert describe_scheduler(asha.meta, stopped).startswith(
        f"asha (why: {ASHA_REASON}). It stopped 2 trial(s) early (unet/no-aug, {STOPPED})")
    none_stopped = stopped.assign(stopped_early=False)
    assert describe_scheduler({"settings": {"scheduler": "fifo"}}, none_stopped) == "fifo."
    assert describe_scheduler({}, none_stopped) == "unknown."


def test_the_report_shows_scheduler_and_projected_minutes(asha, tmp_path):
    from analysis.report import build_report

    out = tmp_path / "report"
    page = build_report(asha.path, out, examples=False).read_text()
    assert f"<b>Scheduler:</b> asha (why: {ASHA_REASON})." in page
    assert "<li>Unequal work: unet/no-aug trained 1 of 3 epochs (stopped early by ASHA)" in page
    assert "<td>0.555 (projected from 1 of 3 epochs)</td>" in page  # Task 3's table
    trials = pd.read_csv(out / "trials.csv").set_index("name")
    assert trials.loc[STOPPED, "train_minutes"] == pytest.approx(0.185)
    assert trials.loc[STOPPED, PROJECTED] == pytest.approx(0.555)
    assert f"2. {STOPPED} (0.555 min, projected from 1 of 3 epochs)" in (
        out / "rankings.md").read_text()
