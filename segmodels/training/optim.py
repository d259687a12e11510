"""Optimizers and learning-rate schedules by name: the one list of each.

``TrialConfig`` validates its ``optimizer`` and ``lr_scheduler`` against these keys, the CLI
offers them as choices, and the Lightning module builds from them. torch loads when one is
built, not with the names: the CLI's parser reads them without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

OptimizerBuilder = Callable[[Iterable["torch.nn.Parameter"], float, float], "torch.optim.Optimizer"]
SchedulerBuilder = Callable[["torch.optim.Optimizer", int], Any]


def _optim() -> ModuleType:
    import torch.optim

    return torch.optim


OPTIMIZERS: dict[str, OptimizerBuilder] = {
    "adam": lambda params, lr, wd: _optim().Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd: _optim().AdamW(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: _optim().SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
}

# Stepped once per epoch; ``epochs`` is the trial's planned epochs.
LR_SCHEDULERS: dict[str, SchedulerBuilder] = {
    "none": lambda opt, epochs: _optim().lr_scheduler.LambdaLR(opt, lambda epoch: 1.0),
    "step": lambda opt, epochs: _optim().lr_scheduler.StepLR(opt, max(1, epochs // 3), 0.1),
    "cosine": lambda opt, epochs: _optim().lr_scheduler.CosineAnnealingLR(opt, epochs),
    "poly": lambda opt, epochs: _optim().lr_scheduler.LambdaLR(
        opt, lambda epoch: (1 - min(epoch, epochs - 1) / epochs) ** 0.9
    ),
}


def state_tensors(optimizer: str) -> tuple[int, int]:
    """Per parameter, the tensors the optimizer keeps: (how many are parameter-sized, how many
    in all); Adam: (2, 3) with its step counter, SGD with momentum: (1, 1). Found by stepping
    it once on one parameter, so the registry stays the one list."""
    import torch

    param = torch.nn.Parameter(torch.zeros(4))
    built = OPTIMIZERS[optimizer]([param], 1e-3, 0.0)
    param.grad = torch.ones_like(param)
    built.step()
    tensors = [value for value in built.state[param].values() if torch.is_tensor(value)]
    return sum(1 for t in tensors if t.shape == param.shape), len(tensors)
