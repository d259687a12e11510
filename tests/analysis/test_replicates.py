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
    interval_lines,
    point_difference,
    point_frame,
    point_table,
    point_tie_groups,
    seed_matched_difference,
    seed_of,
)
from analysis.statistics import (
    paired_t_difference,
    paired_t_p_value,
    seed_image_difference,
    seed_image_difference_p,
    t_interval,
)


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
    pairs = sorted(pairs, key=lambda p: seed_of(seeded, p.on))
    expected = seed_image_difference(np.stack([seeded.image_confusions(p.on) for p in pairs]),
                                     np.stack([seeded.image_confusions(p.off) for p in pairs]))
    assert (difference.estimate, difference.low, difference.high) == \
        (expected.estimate, expected.low, expected.high)  # the rankings' test, seeds and images
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
    lines = interval_lines(seeded)
    assert lines[0].startswith("Points over seeds (mean best val mIoU, 95% interval; same rank:")
    assert lines[1].startswith("  1. unet/aug: ") and "over 3 seed(s)" in lines[1]
    assert lines[2].startswith("  2. unet/no-aug: ")  # augmentation clearly helps: not tied
    assert any(line.startswith("  unet/aug/seed=0: ") and "[" in line for line in lines)


def _add_point(exp, name: str, evidence: dict[str, np.ndarray], model: str = "unet") -> None:
    """Add seeds 0.. of a further point (a config differing in ``model``) to ``exp``."""
    from evidence_helpers import fake_experiment as make

    extra = make(exp.path / name.replace("/", "_"), evidence)
    for seed, trial_id in enumerate(evidence):
        exp.configs[trial_id] = {"model": model, "augment": True, "seed": seed,
                                 "miou_definition": "global"}
    extra.trials["name"] = [f"{name}/seed={seed}" for seed in range(len(evidence))]
    exp.trials = pd.concat([exp.trials, extra.trials], ignore_index=True)


def test_two_points_are_compared_over_their_seeds_and_shared_images(seeded):
    aug, noaug = ["aug0", "aug1", "aug2"], ["noaug0", "noaug1", "noaug2"]
    interval, p = point_difference(seeded, aug, noaug)
    a = np.stack([seeded.image_confusions(t) for t in aug])
    b = np.stack([seeded.image_confusions(t) for t in noaug])
    expected = seed_image_difference(a, b)
    assert (interval.estimate, interval.low, interval.high) == \
        (expected.estimate, expected.low, expected.high)
    assert p == seed_image_difference_p(a, b) and interval.low > 0 and p < 0.05


def test_without_per_image_evidence_two_points_fall_back_to_the_paired_t(seeded, monkeypatch):
    monkeypatch.setattr(type(seeded), "image_confusions", lambda self, trial_id: None)
    aug, noaug = ["aug0", "aug1", "aug2"], ["noaug0", "noaug1", "noaug2"]
    interval, p = point_difference(seeded, aug, noaug)
    scores = seeded.trials.set_index("trial_id")["best_val_miou"]
    expected = paired_t_difference(scores[aug].to_numpy(), scores[noaug].to_numpy())
    assert (interval.low, interval.high) == (expected.low, expected.high)
    assert p == paired_t_p_value(scores[aug].to_numpy(), scores[noaug].to_numpy())
    assert point_difference(seeded, aug[:1], noaug[:1]) is None  # one seed, no evidence


def test_points_a_test_cannot_tell_from_the_best_share_its_rank(seeded):
    """A third point drawn like unet/aug is tied with it; unet/no-aug is ranked below both."""
    rng = np.random.default_rng(7)
    _add_point(seeded, "twin", {f"twin{s}": fake_images(rng, 0.80 + rng.normal(0, 0.02))
                                for s in range(3)}, model="twin")
    groups = point_tie_groups(seeded, point_table(seeded))["best_val_miou"]
    assert sorted(groups[0]) == ["twin", "unet/aug"] and groups[1] == ["unet/no-aug"]
    lines = interval_lines(seeded)
    assert sum(line.startswith("  1. ") for line in lines) == 2


def test_a_points_frame_averages_its_seeds_and_keeps_the_training_times_spread(seeded):
    seeded.trials["train_minutes"] = [1.0, 2.0, 1.5, 2.5, 2.0, 3.0]  # noaug0, aug0, noaug1, ...
    frame = point_frame(seeded).set_index("name")
    assert frame.loc["unet/aug", "train_minutes"] == pytest.approx(2.5)
    assert (frame.loc["unet/aug", "train_minutes_low"],
            frame.loc["unet/aug", "train_minutes_high"]) == (2.0, 3.0)
    assert frame.loc["unet/no-aug", "seeds"] == 3
    assert "train 2.50 min (2.00-3.00 over seeds)" in "\n".join(interval_lines(seeded))


def test_a_seed_whose_trial_failed_is_left_out_of_the_seed_matched_verdict(seeded):
    seeded.trials.loc[seeded.trials["trial_id"] == "aug2", "best_val_miou"] = np.nan
    pairs = find_pairs(seeded.configs, "augment")
    difference = seed_matched_difference(seeded, pairs)
    assert difference is not None and difference.n == 2
