"""CPU inference time per architecture, measured after the sweep, one model at a time.

Trials record their own figure, but on a shared machine it is taken while other trials train
on the same cores (the same network was seen timed 77 and 139 ms in one sweep). Here each
distinct architecture is timed alone in the driver, with the thread count a trial had, so the
"who is fastest" question is answered on a quiet machine. Timing needs no trained weights.
"""

from __future__ import annotations

from typing import Any

import torch

from segmodels.config import TrialConfig, trial_settings
from segmodels.inference import time_inference
from segmodels.registry import create_model

__all__ = ["time_architectures"]


def time_architectures(points: dict[str, dict[str, Any]], fixed: dict[str, Any],
                       threads: int) -> dict[str, dict[str, Any]]:
    """Grid label -> {"ms", "threads", "height", "width"}; one measurement per architecture."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    measured: dict[str, dict[str, Any]] = {}
    by_architecture: dict[str, dict[str, Any]] = {}
    try:
        for label, point in points.items():
            cfg = TrialConfig.from_dict(trial_settings(fixed, point))
            args = {**cfg.model_args(), "pretrained": None}
            key = repr((cfg.model, sorted(args.items())))
            if key not in by_architecture:
                model = create_model(cfg.model, **args)
                ms = time_inference(model, "cpu", height=cfg.inference_height,
                                    width=cfg.inference_width, repeats=cfg.inference_repeats)
                by_architecture[key] = {"ms": ms, "threads": max(1, threads),
                                        "height": cfg.inference_height,
                                        "width": cfg.inference_width}
            measured[label] = by_architecture[key]
    finally:
        torch.set_num_threads(previous)
    return measured
