"""Inference time per architecture, measured after the sweep, one model at a time.

Trials record their own figures, but on a shared machine they are taken while other trials
train on the same cores or share the same GPU (the same network was seen timed 77 and 139 ms on
the CPU in one sweep). Here each distinct architecture is timed alone: on the CPU in the driver,
with the thread count a trial had; on a GPU (when the sweep's trials used GPUs) in one Ray task
that asks for a whole GPU, since a cluster's head node has none. Timing needs no trained
weights. An architecture already timed (a resumed sweep) is not timed again.
"""

from __future__ import annotations

from typing import Any

import torch

from segmodels.config import TrialConfig, trial_settings
from segmodels.inference import time_inference
from segmodels.registry import create_model

__all__ = ["missing", "time_architectures", "time_architectures_on_a_gpu"]


def missing(points: dict[str, dict[str, Any]],
            timed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The grid points with no timing yet (all of them for a new sweep; none for a resumed
    sweep that finished its timing pass)."""
    return {label: point for label, point in points.items() if "ms" not in timed.get(label, {})}


def time_architectures(points: dict[str, dict[str, Any]], fixed: dict[str, Any],
                       threads: int, device: str = "cpu") -> dict[str, dict[str, Any]]:
    """Grid label -> {"ms", "threads", "height", "width", "device"}; one measurement per
    architecture, on ``device``."""
    where = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
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
                ms = time_inference(model, device, height=cfg.inference_height,
                                    width=cfg.inference_width, repeats=cfg.inference_repeats)
                by_architecture[key] = {"ms": ms, "threads": max(1, threads),
                                        "height": cfg.inference_height,
                                        "width": cfg.inference_width, "device": where}
                del model
            measured[label] = by_architecture[key]
    finally:
        torch.set_num_threads(previous)
    return measured


def _time_on_this_gpu(points: dict[str, dict[str, Any]],
                      fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return time_architectures(points, fixed, threads=1, device="cuda")


def time_architectures_on_a_gpu(points: dict[str, dict[str, Any]],
                                fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``time_architectures`` on CUDA, in a Ray task holding one whole GPU (once the trials are
    done, so nothing shares it) on whichever node has one."""
    import ray

    task = ray.remote(num_gpus=1, num_cpus=1, max_retries=0)(_time_on_this_gpu)
    return ray.get(task.remote(points, fixed))
