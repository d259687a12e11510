"""Seeds as replicates, on fake experiments whose per-image evidence is known: trials that
differ only in their seed are one point, its mean carries an interval over seeds (and images),
and a switch is judged over seed-matched pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidence_helpers import fake_experiment, fake_images

from analysis.comparisons import find_pairs
from analysis.replicates import (
    describe_evidence,
    has_replicates,
    point_table,
    seed_matched_difference,
)
from analysis.statistics import paired_t_difference, t_interval


@pytest.fixture
def seeded(tmp_path):
    """unet with and without augmentation, 3 seeds each; augmentation clearly helps."""
    rng = np.random.default_rng(1)
    evidence, configs = {}, {}
    for seed in range(3):
        for augment, accuracy in ((False, 0.55), (True, 0.80)):
            trial_id = f"{'aug' if augment else 'noaug'}{seed}"
            evidence[trial_id] = fake_images(rng, accuracy + rng.normal(0, 0.02))
            configs[trial_id] = {"model": "unet", "augment": augment, "seed": seed,
                                 "miou_definition": "global"}
    exp = fake_experiment(tmp_path, evidence)
    exp.configs.update(configs)
    exp.trials["name"] = [("unet/aug" if c["augment"] else "unet/no-aug") + f"/seed={c['seed']}"
                          for c in (configs[t] for t in exp.trials["trial_id"])]
    return exp


def test_a_points_mean_over_its_seeds_carries_an_interval_over_seeds_andfake_images(seeded):
    assert has_replicates(seeded)
    table = point_table(seeded).set_index("point")
    assert list(table.index) == ["unet/aug", "unet/no-aug"] and (table["seeds"] == 3).all()
    scores = seeded.trials.set_index("trial_id")["best_val_miou"]
    for point, ids in (("unet/aug", ["aug0", "aug1", "aug2"]),
                       ("unet/no-aug", ["noaug0", "noaug1", "noaug2"])):
        row = table.loc[point]
        assert row["best_val_miou"] == pytest.approx(scores[ids].mean())
        seeds_only = t_interval(scores[ids].to_numpy())
        assert row["miou_low"] < row["best_val_miou"] < row["miou_high"]
        # seeds and images together: at least as wide as the seeds alone (Monte Carlo slack)
        assert row["miou_high"] - row["miou_low"] >= 0.9 * seeds_only.width
        assert row["trial_ids"] == " ".join(ids)


def test_a_switch_is_judged_over_seed_matched_pairs(seeded):
    pairs = find_pairs(seeded.configs, "augment")
    assert len(pairs) == 3 and len({p.subject for p in pairs}) == 1  # one pair per seed
    difference = seed_matched_difference(seeded, pairs)
    scores = seeded.trials.set_index("trial_id")["best_val_miou"]
    expected = paired_t_difference(scores[[p.on for p in pairs]].to_numpy(),
                                   scores[[p.off for p in pairs]].to_numpy())
    assert (difference.estimate, difference.low, difference.high) == \
        (expected.estimate, expected.low, expected.high)
    assert difference.low > 0 and difference.n == 3
    assert seed_matched_difference(seeded, pairs[:1]) is None  # one seed: no seed interval


def test_the_report_says_how_many_seeds_stand_behind_each_point(seeded):
    text = describe_evidence(seeded)
    assert "up to 3 seeds (0, 1, 2)" in text and "40 validation images" in text


def test_without_replicates_there_is_no_points_table(tmp_path):
    rng = np.random.default_rng(2)
    exp = fake_experiment(tmp_path, {"a": fake_images(rng, 0.7), "b": fake_images(rng, 0.6)})
    exp.configs["a"]["model"], exp.configs["b"]["model"] = "unet", "deeplab"
    assert not has_replicates(exp)
    assert (point_table(exp)["seeds"] == 1).all()
    assert isinstance(point_table(exp), pd.DataFrame)


def test_the_cli_ranking_shows_each_points_and_trials_interval(seeded):
    from analysis.replicates import interval_lines

    lines = interval_lines(seeded)
    assert lines[0] == "Points over seeds (mean best val mIoU, 95% interval):"
    assert lines[1].startswith("  unet/aug: ") and lines[1].endswith("over 3 seed(s)")
    assert any(line.startswith("  unet/aug/seed=0: ") and "[" in line for line in lines)


def test_a_seed_whose_trial_failed_is_left_out_of_the_seed_matched_verdict(seeded):
    seeded.trials.loc[seeded.trials["trial_id"] == "aug2", "best_val_miou"] = np.nan
    pairs = find_pairs(seeded.configs, "augment")
    difference = seed_matched_difference(seeded, pairs)
    assert difference is not None and difference.n == 2
