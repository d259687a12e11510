"""Segmentation metrics as pure functions of a confusion matrix.

``cm[t, p]`` counts pixels of target class ``t`` predicted as ``p`` (rows = target, columns =
prediction), like torchvision's reference trainer. The Lightning module only accumulates ``cm``.
Classes absent from both target and prediction get IoU ``nan`` and are left out of the means,
so a class that never occurs counts neither as 0 nor as 1.

The course computed IoU and recall per image (with an ``eps``) and averaged over images; that
variant is ``per_image_scores`` for users who compare against course numbers.
``constant_predictor_miou`` is the baseline every report sets a model's mIoU against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from segmodels.classes import NUM_CLASSES


class HasMasks(Protocol):
    """A split of a dataset, as far as a metric reads it (``segmodels.data.Split``)."""

    masks: Sequence[np.ndarray]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """(K, K) int64 counts of target x prediction; stays on the inputs' device."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    index = num_classes * target[valid] + pred[valid]
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def _as_float(cm: torch.Tensor) -> torch.Tensor:
    return cm.to(torch.float64)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """tp / (tp + fp + fn) per class; nan where the class is in neither target nor prediction."""
    cm = _as_float(cm)
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(cm: torch.Tensor) -> float:
    return float(torch.nanmean(iou_per_class(cm)))


def pixel_accuracy(cm: torch.Tensor) -> float:
    cm = _as_float(cm)
    return float(cm.diagonal().sum() / cm.sum().clamp(min=1))


def recall_per_class(cm: torch.Tensor) -> torch.Tensor:
    """tp / (tp + fn); nan where the class is absent from the target."""
    cm = _as_float(cm)
    support = cm.sum(1)
    return torch.where(
        support > 0, cm.diagonal() / support.clamp(min=1), torch.full_like(support, float("nan"))
    )


def mean_class_recall(cm: torch.Tensor) -> float:
    return float(torch.nanmean(recall_per_class(cm)))


def course_scores(image_cms: torch.Tensor, eps: float = 1e-6) -> dict[str, float]:
    """The course's per-image definitions over a stack of per-image matrices ``(N, K, K)``:
    per image, the mean over classes of (tp + eps) / (union + eps) and (tp + eps) /
    (support + eps), then averaged over images. Every class counts (an absent class scores 1
    through eps), as the course defines it, so figures are comparable with course reports.
    """
    cms = _as_float(image_cms)
    tp = cms.diagonal(dim1=-2, dim2=-1)  # (N, K)
    union = cms.sum(-2) + cms.sum(-1) - tp
    support = cms.sum(-1)
    return {
        "miou": float(((tp + eps) / (union + eps)).mean()),
        "mean_class_recall": float(((tp + eps) / (support + eps)).mean()),
        "accuracy": float((tp.sum(-1) / cms.sum((-2, -1)).clamp(min=1)).mean()),
    }


def per_image_scores(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, eps: float = 1e-6
) -> dict[str, float]:
    """``course_scores`` of a single image."""
    return course_scores(confusion_matrix(pred, target, num_classes)[None], eps)


def constant_predictor_miou(val: HasMasks, num_classes: int = NUM_CLASSES) -> float:
    """mIoU of the best single-class prediction everywhere: the floor a model must beat.

    0.0 for a split without pixels. Mask values >= ``num_classes`` are not counted.
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    for mask in val.masks:
        counts += np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
    best = 0.0
    for c in range(num_classes):
        cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        cm[:, c] = torch.from_numpy(counts)  # every pixel predicted as c
        best = max(best, mean_iou(cm))  # an empty split's nan loses to 0.0
    return best
