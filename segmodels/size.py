"""Model size as PyTorch Lightning's ModelSummary prints it, so reports match what users see."""

from __future__ import annotations

from torch import nn


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Lightning's "Total estimated model params size (MB)": fp32 params, MB = bytes / 1e6."""
    return parameter_count(model) * 4 / 1e6
