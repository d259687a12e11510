import math

import numpy as np
import pytest
import torch

from segmodels import metrics
from segmodels.data import Split


def _cm(pred, target, k=3):
    return metrics.confusion_matrix(torch.tensor(pred), torch.tensor(target), k)


def test_confusion_matrix_rows_are_targets_columns_predictions():
    cm = _cm([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 1])
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 2]]


def test_confusion_matrix_skips_ignored_and_out_of_range_targets():
    cm = metrics.confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 255, 1]), 2, 255)
    assert cm.tolist() == [[1, 0], [0, 1]]


def test_hand_computed_scores():
    # target: 0 0 1 1 2 2 ; pred: 0 1 1 1 2 0
    cm = _cm([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2])
    # class 0: tp1 fp1 fn1 -> 1/3 ; class 1: tp2 fp1 fn0 -> 2/3 ; class 2: tp1 fp0 fn1 -> 1/2
    assert metrics.iou_per_class(cm).tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert metrics.mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert metrics.pixel_accuracy(cm) == pytest.approx(4 / 6)
    assert metrics.mean_class_recall(cm) == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_classes_absent_from_target_and_prediction_are_excluded():
    cm = _cm([0, 0, 1], [0, 1, 1])  # class 2 never appears
    iou = metrics.iou_per_class(cm)
    assert math.isnan(iou[2])
    assert metrics.mean_iou(cm) == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_class_predicted_but_absent_from_target_counts_as_zero_iou():
    cm = _cm([2, 0], [0, 0])
    assert metrics.iou_per_class(cm)[2] == 0
    assert math.isnan(metrics.recall_per_class(cm)[2])


def test_course_per_image_definition_uses_eps_and_counts_every_class():
    pred, target = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 0])
    scores = metrics.per_image_scores(pred, target, 3, eps=1e-6)
    # class 0: tp 2 / union 3, class 1: tp 1 / union 2, class 2 absent: eps/eps = 1
    assert scores["miou"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(3 / 4)


def test_course_scores_average_over_images():
    a = _cm([0, 0], [0, 0])
    b = _cm([1, 1], [0, 0])
    both = metrics.course_scores(torch.stack([a, b]), eps=1e-6)
    assert both["accuracy"] == pytest.approx(0.5)


def _masks(*rows):
    masks = [np.array(r, dtype=np.uint8)[None] for r in rows]  # (1, W) each
    return Split([f"m{i}" for i in range(len(masks))], [m[..., None] for m in masks], masks)


def test_constant_predictor_baseline_is_the_best_single_class_everywhere():
    # 6 pixels of class 0, 2 of class 1, none of class 2; 7 is outside the 3 classes.
    val = _masks([0, 0, 0, 1], [0, 0, 0, 1, 7])
    # all 0: IoU 6/8 for class 0, 0 for class 1, class 2 absent -> 0.375 (all 1 gives 0.125)
    assert metrics.constant_predictor_miou(val, 3) == pytest.approx(0.375)
    assert metrics.constant_predictor_miou(_masks([2, 2, 1]), 3) == pytest.approx(1 / 3)
    assert metrics.constant_predictor_miou(_masks(), 3) == 0.0  # an empty split, not nan


def test_matches_torchmetrics_on_random_predictions():
    tm = pytest.importorskip("torchmetrics.classification")
    g = torch.Generator().manual_seed(0)
    k = 5
    pred = torch.randint(0, k, (4, 32, 32), generator=g)
    target = torch.randint(0, k, (4, 32, 32), generator=g)
    cm = metrics.confusion_matrix(pred, target, k)
    assert torch.equal(cm, tm.MulticlassConfusionMatrix(k)(pred, target))
    ref_iou = tm.MulticlassJaccardIndex(k, average="none")(pred, target)
    assert metrics.iou_per_class(cm).float() == pytest.approx(ref_iou, abs=1e-6)
    ref_recall = tm.MulticlassRecall(k, average="macro")(pred, target)
    assert metrics.mean_class_recall(cm) == pytest.approx(float(ref_recall), abs=1e-6)
    ref_acc = tm.MulticlassAccuracy(k, average="micro")(pred, target)
    assert metrics.pixel_accuracy(cm) == pytest.approx(float(ref_acc), abs=1e-6)
