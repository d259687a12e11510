"""The loss registry: what a trial minimises (``TrialConfig.loss``).

- ``ce``: cross-entropy, the course's loss and the default.
- ``weighted_ce``: cross-entropy with a weight per class from the training split's pixel
  frequencies (median frequency balancing, as in SegNet: ``w_c = median(f) / f_c``). With plain
  cross-entropy, classes that cover 1-4% of the pixels (buildings, roads, vehicles, pools) were
  never predicted: every model stayed at the constant-prediction mIoU. The runner computes the
  weights once per sweep (``class_weights``) and records them in the sweep's fixed settings.
- ``dice``, ``focal``, ``lovasz``: segmentation-models-pytorch's multiclass losses.
- ``ce+dice``, ``ce+focal``, ``ce+lovasz``: each summed with cross-entropy.

Every loss skips the pixels whose mask is ``IGNORE_INDEX`` (255). torch loads when a loss is
built (the modules that wrap losses are in ``loss_modules``), so the CLI's parser and the
checks read the names without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from segmodels.classes import IGNORE_INDEX
from segmodels.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


def _ce(weights: torch.Tensor | None) -> nn.Module:
    from torch import nn

    return nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)


def _weighted_ce(weights: torch.Tensor | None) -> nn.Module:
    from torch import nn

    return nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_INDEX)


def _dice(weights: torch.Tensor | None) -> nn.Module:
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss("multiclass", ignore_index=IGNORE_INDEX)


def _focal(weights: torch.Tensor | None) -> nn.Module:
    from segmentation_models_pytorch.losses import FocalLoss

    return FocalLoss("multiclass", ignore_index=IGNORE_INDEX)


def _lovasz(weights: torch.Tensor | None) -> nn.Module:
    from segmentation_models_pytorch.losses import LovaszLoss

    return LovaszLoss("multiclass", ignore_index=IGNORE_INDEX)


def _with_ce(other: Callable[[torch.Tensor | None], nn.Module]):
    def build(weights: torch.Tensor | None) -> nn.Module:
        from segmodels.training.loss_modules import SumLoss

        return SumLoss(_ce(weights), other(weights))

    return build


LOSSES: dict[str, Callable[[torch.Tensor | None], nn.Module]] = {
    "ce": _ce,
    "weighted_ce": _weighted_ce,
    "dice": _dice,
    "focal": _focal,
    "lovasz": _lovasz,
    "ce+dice": _with_ce(_dice),
    "ce+focal": _with_ce(_focal),
    "ce+lovasz": _with_ce(_lovasz),
}
NEEDS_CLASS_WEIGHTS = frozenset({"weighted_ce"})


def list_losses() -> list[str]:
    return list(LOSSES)


def build_loss(name: str, num_classes: int,
               class_weights: Sequence[float] | None = None) -> nn.Module:
    """The loss ``name`` as a module taking (logits (N, K, H, W), masks (N, H, W))."""
    import torch

    from segmodels.training.loss_modules import NoLabelSafe

    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; supported: {', '.join(LOSSES)}")
    weights = None
    if name in NEEDS_CLASS_WEIGHTS:
        if class_weights is None:
            raise ConfigError(f"loss {name!r} needs class_weights (one per class); a sweep "
                              "computes them from its training split, a single trial must set "
                              "them, or choose loss 'ce'")
        if len(class_weights) != num_classes or not all(
                np.isfinite(w) and w >= 0 for w in class_weights):
            raise ConfigError(f"class_weights must be {num_classes} finite numbers >= 0, got "
                              f"{list(class_weights)}")
        weights = torch.tensor(class_weights, dtype=torch.float32)
    return NoLabelSafe(LOSSES[name](weights))


def class_weights(masks: Sequence[np.ndarray], num_classes: int) -> list[float]:
    """Median frequency balancing over ``masks`` (a training split's class-id arrays): weight
    ``median(f) / f_c`` for each class's pixel frequency ``f_c`` (ignored pixels not counted).
    A class absent from the split gets the largest weight of the present ones: it is the rarest,
    and a zero weight would make the loss of an image holding only that class 0/0."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for mask in masks:
        counts += np.bincount(mask.ravel(), minlength=256)[:num_classes]
    present = counts > 0
    if not present.any():
        return [1.0] * num_classes
    freq = counts / counts.sum()
    weights = np.zeros(num_classes)
    weights[present] = np.median(freq[present]) / freq[present]
    weights[~present] = weights[present].max()
    return [round(float(w), 6) for w in weights]
