"""The torch modules that wrap the losses of the registry (``losses``): a sum of losses, and a
loss that stays finite on a batch without labelled pixels."""

from __future__ import annotations

import torch
from torch import nn

from segmodels.classes import IGNORE_INDEX


class SumLoss(nn.Module):
    """The sum of several losses of the same (logits, masks)."""

    def __init__(self, *losses: nn.Module):
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return sum(loss(logits, masks) for loss in self.losses)


class NoLabelSafe(nn.Module):
    """A loss that is 0, with zero gradients, for a batch whose pixels are all unlabelled (255,
    accepted in masks): a mean over no pixels is 0/0, NaN, and would end the trial as diverged.
    Branch-free, so a GPU never waits on the question: such a batch is scored against class 0
    everywhere and multiplied by 0."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        labelled = (masks != IGNORE_INDEX).any()
        masks = torch.where(labelled, masks, torch.zeros_like(masks))
        return self.loss(logits, masks) * labelled
