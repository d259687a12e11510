"""Intervals from stored per-image evidence: on fake experiments whose per-image confusion
matrices are known, each trial's interval holds its score, paired differences have the right
sign, the tie group with the best is what the data supports, and no verdict names a winner
whose interval of the difference contains 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidence_helpers import N, fake_experiment, fake_images

from analysis.comparisons import SWITCHES, SwitchPair
from analysis.findings import compare_pair
from analysis.intervals import (
    UNAVAILABLE,
    image_intervals,
    pair_difference,
    tied_with_best,
)
from analysis.loading import Experiment
from analysis.replicates import describe_evidence


@pytest.fixture
def exp(tmp_path) -> Experiment:
    rng = np.random.default_rng(0)
    best = fake_images(rng, 0.80)
    near = best.copy()  # the same model but for a few images: no detectable difference
    near[:3] = fake_images(rng, 0.78)[:3]
    return fake_experiment(tmp_path, {"best": best, "near": near, "worse": fake_images(rng, 0.55),
                                  "legacy": None})


def test_each_trial_gets_an_interval_over_its_images_or_the_reason_it_has_none(exp):
    table = image_intervals(exp)
    scores = exp.trials.set_index("trial_id")["best_val_miou"]
    for trial_id in ("best", "near", "worse"):
        low, high = table.loc[trial_id, ["miou_low", "miou_high"]]
        assert low < scores[trial_id] < high and high - low < 0.1, trial_id
        assert table.loc[trial_id, "val_images"] == N
        assert "bootstrap over 40 images" in table.loc[trial_id, "miou_interval"]
    assert np.isnan(table.loc["legacy", "miou_low"])
    assert table.loc["legacy", "miou_interval"] == UNAVAILABLE


def test_a_paired_difference_has_the_sign_of_the_better_model(exp):
    assert pair_difference(exp, "best", "worse").low > 0
    assert pair_difference(exp, "worse", "best").high < 0
    same = pair_difference(exp, "best", "best")
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    assert pair_difference(exp, "best", "legacy") is None  # no evidence: no interval


def test_the_tie_group_holds_what_no_paired_test_can_tell_from_the_best(exp):
    scores = exp.trials.set_index("trial_id")["best_val_miou"]
    assert tied_with_best(exp, ["best", "near", "worse"], scores) == {"best", "near"}
    assert tied_with_best(exp, ["best", "near", "legacy"], scores) is None


@pytest.mark.parametrize("off, on, winner", [("worse", "best", True), ("near", "best", False)])
def test_a_verdict_names_a_winner_only_when_the_interval_excludes_zero(exp, off, on, winner):
    history = pd.DataFrame([
        {"trial_id": t, "epoch": e, "val_miou": 0.3, "val_accuracy": 0.5,
         "val_mean_class_recall": 0.4, "val_loss": 1.0 - e / 10, "train_loss": 1.1 - e / 10}
        for t in (off, on) for e in (1, 2, 3)])
    pair = SwitchPair(SWITCHES["augment"], off, on, "unet")
    difference = pair_difference(exp, on, off)
    lines = compare_pair(exp.trials, history, pair, 0.05, "fifo", difference)
    [verdict] = [line for line in lines if line.startswith("Verdict")]
    assert ("better than" in verdict) is winner
    if not winner:
        assert difference.contains(0) and "no detectable difference" in verdict
    assert "paired bootstrap over the 40 validation images" in verdict


def test_without_evidence_the_stated_margin_decides_and_says_so(exp):
    history = pd.DataFrame([{"trial_id": t, "epoch": 1, "val_miou": 0.3, "val_accuracy": 0.5,
                             "val_mean_class_recall": 0.4, "val_loss": 1.0, "train_loss": 1.0}
                            for t in ("legacy", "best")])
    pair = SwitchPair(SWITCHES["augment"], "legacy", "best", "unet")
    lines = compare_pair(exp.trials, history, pair, 0.05, "fifo", None)
    [verdict] = [line for line in lines if line.startswith("Verdict")]
    assert "stated 5% margin (no per-image evidence stored, so no interval)" in verdict


def test_the_report_says_what_evidence_stands_behind_the_answers(exp):
    text = describe_evidence(exp)
    assert "40 validation images" in text and "one training run" in text
    assert "1 trial(s) kept no per-image evidence" in text


def test_rankings_tie_by_test_where_every_trial_kept_its_evidence(exp):
    from analysis.intervals import tie_groups
    from analysis.rankings import rankings_markdown

    tested = exp.trials[exp.trials["trial_id"] != "legacy"]
    groups = tie_groups(exp, tested)
    assert groups == {"best_val_miou": [["model-best", "model-near"], ["model-worse"]]}
    text = rankings_markdown(tested, 0.05, tested=groups)
    assert "paired bootstrap over the validation images" in text
    assert "1. model-best (" in text and "(no detectable difference)" in text
    assert tie_groups(exp, exp.trials) is None  # the legacy trial has no evidence


def test_many_comparisons_can_still_separate_trials(tmp_path):
    """The share-counting bootstrap p never goes below 2/2001, so Holm over 60 comparisons
    could never reject; the normal approximation has no such floor."""
    from analysis.statistics import holm, paired_bootstrap_normal_p

    rng = np.random.default_rng(5)
    good, bad = fake_images(rng, 0.9), fake_images(rng, 0.4)
    p = paired_bootstrap_normal_p(good, bad)
    assert p < 1e-6 and holm([p] * 60).max() < 0.05
    assert paired_bootstrap_normal_p(good, good) == 1.0


def test_a_tie_group_takes_the_trials_in_score_order_whatever_order_they_come_in(exp):
    """The group grows from the best down the scores and stops at the first trial the test
    separates, so a lower score never ranks above a higher one."""
    scores = exp.trials.set_index("trial_id")["best_val_miou"]
    groups = tied_with_best(exp, ["best", "worse", "near"], scores)
    assert groups == {"best", "near"}


def test_a_trial_without_a_best_epoch_has_no_evidence_and_no_crash(exp):
    exp.trials.loc[exp.trials["trial_id"] == "best", "best_epoch"] = pd.NA
    exp.trials["best_epoch"] = exp.trials["best_epoch"].astype("Int64")
    assert exp.image_confusions("best") is None
    assert np.isnan(image_intervals(exp).loc["best", "miou_low"])


def test_an_empty_evidence_file_is_damaged_not_a_crash(tmp_path):
    from segmodels.training import load_image_confusions

    (tmp_path / "e.npy").write_bytes(b"")
    assert load_image_confusions(tmp_path / "e.npy") is None
