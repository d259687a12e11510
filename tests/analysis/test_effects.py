"""Main effects on fake experiments with known scores: each axis's effect averaged over the
other axes, with its interval, and a direction named only when the interval excludes 0."""

from __future__ import annotations

import numpy as np
import pytest
from evidence_helpers import fake_experiment, fake_images

from analysis.effects import effect_lines, main_effects
from analysis.statistics import t_interval


@pytest.fixture
def grid(tmp_path):
    """model x augment x seed: augmentation helps by about 0.2 on every model and seed,
    the model does nothing detectable."""
    rng = np.random.default_rng(3)
    evidence, configs = {}, {}
    for model in ("unet", "deeplab"):
        for seed in range(3):
            for augment, accuracy in ((False, 0.55), (True, 0.75)):
                trial_id = f"{model}-{augment}-{seed}"
                evidence[trial_id] = fake_images(rng, accuracy + rng.normal(0, 0.02))
                configs[trial_id] = {"model": model, "augment": augment, "seed": seed,
                                     "miou_definition": "global"}
    exp = fake_experiment(tmp_path, evidence)
    exp.configs.update(configs)
    return exp


def test_each_axis_effect_is_the_mean_of_its_matched_pairs_with_a_t_interval(grid):
    effects = main_effects(grid).set_index("axis")
    assert set(effects.index) == {"augment", "model"}
    augment = effects.loc["augment"]
    assert (augment["value"], augment["versus"], augment["pairs"]) == ("true", "false", 6)
    scores = grid.trials.set_index("trial_id")["best_val_miou"]
    differences = [scores[f"{m}-True-{s}"] - scores[f"{m}-False-{s}"]
                   for m in ("unet", "deeplab") for s in range(3)]
    expected = t_interval(differences)
    assert augment["effect"] == pytest.approx(expected.estimate)
    assert (augment["low"], augment["high"]) == pytest.approx((expected.low, expected.high))
    assert augment["low"] > 0.1


def test_a_direction_is_named_only_when_the_interval_excludes_zero(grid):
    lines = effect_lines(main_effects(grid))
    [augment] = [line for line in lines if line.startswith("augment")]
    assert "raises best val mIoU by" in augment and "over 6 matched pair(s)" in augment
    [model] = [line for line in lines if line.startswith("model")]
    effects = main_effects(grid).set_index("axis")
    assert effects.loc["model", "low"] < 0 < effects.loc["model", "high"]  # by construction
    assert "no detectable effect" in model and "raises" not in model and "lowers" not in model


def test_an_axis_that_does_not_apply_to_every_model_is_not_its_reference(tmp_path):
    """encoder is None (null) on the course's models: the effect compares encoders."""
    rng = np.random.default_rng(4)
    evidence = {t: fake_images(rng, 0.6) for t in ("a", "b", "c")}
    exp = fake_experiment(tmp_path, evidence)
    exp.configs.update({
        "a": {"model": "smp", "encoder": "resnet34", "seed": 0},
        "b": {"model": "smp", "encoder": "tu-convnext_atto", "seed": 0},
        "c": {"model": "unet", "encoder": None, "seed": 0}})
    effects = main_effects(exp).set_index("axis")
    assert effects.loc["encoder", "versus"] == "resnet34"
    assert effects.loc["encoder", "value"] == "tu-convnext_atto"
