"""analysis.comparisons and analysis.findings: the pairing rule and the sentences written from
the numbers (pure functions on small hand-made inputs)."""

from __future__ import annotations

import pandas as pd

from analysis.comparisons import SWITCHES, SwitchPair, course_models, find_pairs
from analysis.findings import compare_pair, loss_behaviour, overfitting, timing_noise

BASE = {"lr": 0.001, "crop_size": 256, "epochs": 4, "augment": True, "num_workers": None}
UNET = {**BASE, "model": "unet", "backbone": None, "aspp": None}
DEEPLAB = {**BASE, "model": "deeplab", "backbone": "resnet18", "aspp": True}


def test_pairs_differ_in_exactly_the_switch_and_the_course_pair_comes_first():
    configs = {
        "t0": {**DEEPLAB, "backbone": "vgg11_bn", "aspp": False},
        "t1": {**DEEPLAB, "backbone": "vgg11_bn"},
        "t2": {**DEEPLAB, "aspp": False},
        "t3": dict(DEEPLAB),
        "t4": {**UNET, "augment": False},
        "t5": dict(UNET),
        "t6": {**DEEPLAB, "aspp": False, "lr": 0.01},  # differs in lr too: pairs with nobody
        "t7": {**DEEPLAB, "num_workers": 4},  # a run-time setting only: still t2's partner
    }
    aspp = find_pairs(configs, "aspp")
    assert [(p.off, p.on, p.subject) for p in aspp] == [
        ("t2", "t3", "deeplab/resnet18/aug"), ("t0", "t1", "deeplab/vgg11_bn/aug")]
    augment = find_pairs(configs, "augment")
    assert [(p.off, p.on, p.subject) for p in augment] == [("t4", "t5", "unet")]
    assert find_pairs(configs, "pretrained") == []  # nobody sets it to a bool here


def test_course_models_are_the_augmented_aspp_ones_with_a_fallback():
    trials = pd.DataFrame({
        "trial_id": ["t0", "t1", "t2", "t3", "t4"],
        "label": ["unet/no-aug", "unet/aug", "deeplab/r18/no-aspp/aug", "deeplab/r18/aspp/aug",
                  "deeplab/mnv3/aspp/aug"],
        "augment": [False, True, True, True, True], "aspp": [None, None, False, True, True],
        "epochs_done": [2, 2, 2, 2, 0], "best_val_miou": [0.1, 0.2, 0.3, 0.4, None]})
    chosen, how = course_models(trials)
    assert list(chosen["trial_id"]) == ["t1", "t3"] and "course" in how  # t4 has no results
    only_one = trials[trials["trial_id"].isin(["t0", "t1", "t2"])]
    chosen, how = course_models(only_one.assign(aspp=[None, None, False]))
    assert list(chosen["trial_id"]) == ["t0", "t1", "t2"] and "every trial" in how


def curve(train: list[float], val: list[float], **metrics) -> pd.DataFrame:
    n = len(train)
    return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": train, "val_loss": val,
                         **{k: v for k, v in metrics.items()}})


def test_overfitting_needs_val_loss_rising_while_train_loss_falls():
    found = overfitting(curve([1.0, 0.8, 0.6, 0.4], [1.0, 0.7, 0.8, 0.9]))
    assert (found.epoch, found.val_min, found.val_last) == (2, 0.7, 0.9)
    assert "val loss rises after epoch 2 (0.700 → 0.900) while train loss falls" in (
        loss_behaviour("m", curve([1.0, 0.8, 0.6, 0.4], [1.0, 0.7, 0.8, 0.9])))
    assert overfitting(curve([1.0, 0.8, 0.6, 0.4], [1.0, 0.9, 0.8, 0.7])) is None  # still falls
    assert overfitting(curve([1.0, 0.8, 0.9, 1.0], [1.0, 0.7, 0.8, 0.9])) is None  # both rise
    assert overfitting(curve([1.0, 0.8, 0.6, 0.4], [1.0, 0.7, 0.705, 0.71])) is None  # < 2%
    assert "still falling" in loss_behaviour("m", curve([1.0, 0.8, 0.6], [1.0, 0.9, 0.8]))


def test_a_pair_comparison_quotes_its_numbers_and_names_the_winner():
    trials = pd.DataFrame({
        "trial_id": ["off", "on"], "name": ["unet/no-aug", "unet/aug"],
        "best_val_miou": [0.37, 0.41], "epochs_done": [4, 3], "epochs_planned": [4, 4],
        "status": ["TERMINATED", "RUNNING"], "stopped_early": [False, False]})
    metrics = {"val_miou": [0.2, 0.3, 0.37, 0.35], "val_accuracy": [0.5, 0.6, 0.7, 0.6],
               "val_mean_class_recall": [0.3, 0.4, 0.5, 0.4]}
    off = curve([1.0, 0.8, 0.6, 0.4], [1.0, 0.7, 0.8, 0.9], **metrics).assign(trial_id="off")
    on = curve([1.0, 0.9, 0.8], [1.0, 0.8, 0.7], val_miou=[0.2, 0.35, 0.41],
               val_accuracy=[0.5, 0.6, 0.7], val_mean_class_recall=[0.3, 0.4, 0.5]
               ).assign(trial_id="on")
    pair = SwitchPair(SWITCHES["augment"], "off", "on", "unet")
    lines = compare_pair(trials, pd.concat([off, on]), pair, tolerance=0.05)
    # 4 epochs against 3: said first, then the two over the epochs both trained
    assert lines[:3] == [
        "Unequal work: unet/aug trained 3 of 4 epochs (RUNNING), unet/no-aug 4 of 4; this "
        "comparison is provisional.",
        "Over the same epochs (epochs 1-3 of each): best val mIoU 0.410 with augmentation vs "
        "0.370 without augmentation.",
        "unet, with augmentation: best val mIoU 0.410 vs 0.370 without augmentation (+0.040)."]
    assert any("overfitting" in line and "without augmentation" in line for line in lines)
    assert ("Verdict: unet with augmentation is better (best val mIoU 0.410 vs 0.370), by more "
            "than the stated 5% margin (no per-image evidence stored, so no interval).") in lines
    assert any("no clear winner" in line
               for line in compare_pair(trials, pd.concat([off, on]), pair, tolerance=0.2))


def test_a_pair_with_equal_but_unfinished_epochs_is_provisional_in_footnotes():
    trials = pd.DataFrame({
        "trial_id": ["off", "on"], "name": ["unet/no-aug", "unet/aug"],
        "best_val_miou": [0.37, 0.41], "epochs_done": [2, 2], "epochs_planned": [4, 4],
        "status": ["TERMINATED", "RUNNING"], "stopped_early": [True, False]})
    history = pd.concat([
        curve([1.0, 0.8], [1.0, 0.9], val_miou=[0.3, 0.37], val_accuracy=[0.5, 0.6],
              val_mean_class_recall=[0.3, 0.4]).assign(trial_id="off"),
        curve([1.0, 0.9], [1.0, 0.8], val_miou=[0.3, 0.41], val_accuracy=[0.5, 0.7],
              val_mean_class_recall=[0.3, 0.5]).assign(trial_id="on")])
    pair = SwitchPair(SWITCHES["augment"], "off", "on", "unet")
    lines = compare_pair(trials, history, pair, tolerance=0.05, scheduler="asha")
    assert lines[0].startswith("unet, with augmentation: best val mIoU 0.410 vs 0.370")
    assert lines[-2:] == ["Provisional: unet/no-aug has 2 of 4 epochs (stopped early by ASHA).",
                          "Provisional: unet/aug has 2 of 4 epochs (RUNNING)."]


def test_identical_networks_with_different_timings_are_flagged_as_noise():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "name": ["x/no-aug", "x/aug", "y"],
                           "epochs_done": [1, 1, 1], "inference_ms_cpu": [70.0, 140.0, 10.0],
                           "inference_ms_gpu": [None, None, None]})
    configs = {"a": {**UNET, "augment": False}, "b": dict(UNET), "c": dict(DEEPLAB)}
    [line] = timing_noise(trials, configs)
    assert "70 ms (x/no-aug) and 140 ms (x/aug)" in line and "100% spread" in line
    assert timing_noise(trials.assign(inference_ms_cpu=[70.0, 75.0, 10.0]), configs) == []
