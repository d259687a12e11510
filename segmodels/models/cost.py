"""What a model costs to keep and to run: its size (as Lightning's ModelSummary prints it, so
reports match what users see) and its inference time per frame, measured the way a deployment
would see it."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_inference_runs(
    model: nn.Module,
    device: str | torch.device = "cpu",
    *,
    height: int = 750,
    width: int = 1000,
    warmup: int = 1,
    repeats: int = 5,
) -> list[float]:
    """Milliseconds of each of ``repeats`` timed runs of one (1, 3, height, width) frame: eval
    mode, no autograd, warm-up runs first, device synchronised around each timed run. The runs,
    not only their median, so a report can show how much the timing moved."""
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    frame = torch.randn(1, 3, height, width, device=device)
    for _ in range(warmup):
        model(frame)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(frame)
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    model.train(was_training)
    return times


def time_inference(
    model: nn.Module,
    device: str | torch.device = "cpu",
    *,
    height: int = 750,
    width: int = 1000,
    warmup: int = 1,
    repeats: int = 5,
) -> float:
    """Median milliseconds for one frame over ``time_inference_runs``."""
    return statistics.median(time_inference_runs(model, device, height=height, width=width,
                                                 warmup=warmup, repeats=repeats))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Lightning's "Total estimated model params size (MB)": fp32 params, MB = bytes / 1e6."""
    return parameter_count(model) * 4 / 1e6
