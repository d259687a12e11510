"""Inference time per architecture, measured after the sweep, one model at a time.

Trials record their own figures, but on a shared machine they are taken while other trials
train on the same cores or share the same GPU (the same network was seen timed 77 and 139 ms on
the CPU in one sweep). Here each distinct architecture is timed alone: on the CPU in the driver,
with the thread count a trial had; on a GPU (when the sweep's trials used GPUs) in one Ray task
that asks for a whole GPU, since a cluster's head node has none. Timing needs no trained
weights. An architecture already timed (a resumed sweep) is not timed again.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

import torch

from segmodels.models import create_model, time_inference_runs
from segmodels.training import TrialConfig, trial_settings
from sweeps.record import read_experiment_file, write_experiment_file
from sweeps.settings import SweepSettings
from sweeps.storage import INFERENCE_FILE, INFERENCE_GPU_FILE

__all__ = ["missing", "time_after_sweep", "time_architectures", "time_architectures_on_a_gpu"]


def missing(points: dict[str, dict[str, Any]],
            timed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The grid points with no timing yet (all of them for a new sweep; none for a resumed
    sweep that finished its timing pass)."""
    return {label: point for label, point in points.items() if "ms" not in timed.get(label, {})}


def time_architectures(points: dict[str, dict[str, Any]], fixed: dict[str, Any],
                       threads: int, device: str = "cpu") -> dict[str, dict[str, Any]]:
    """Grid label -> {"ms" (the median), "runs_ms" (every timed run), "threads", "height",
    "width", "device"}; one measurement per architecture, on ``device``."""
    where = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    measured: dict[str, dict[str, Any]] = {}
    by_architecture: dict[str, dict[str, Any]] = {}
    try:
        for label, point in points.items():
            cfg = TrialConfig.from_dict(trial_settings(fixed, point))
            key = cfg.network_key()
            if key not in by_architecture:
                model = create_model(cfg.model, **{**cfg.model_args(), "pretrained": None})
                runs = time_inference_runs(model, device, height=cfg.inference_height,
                                           width=cfg.inference_width,
                                           repeats=cfg.inference_repeats)
                by_architecture[key] = {"ms": statistics.median(runs), "runs_ms": runs,
                                        "threads": max(1, threads),
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


def time_after_sweep(settings: SweepSettings, points: dict[str, dict[str, Any]],
                     fixed: dict[str, Any], threads: int,
                     on_gpu: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each architecture's inference time, measured alone once the trials are done: on the CPU
    in the driver, and on a GPU in a Ray task that asks for one when the trials used GPUs.
    What the sweep's files already hold is kept, not timed again (a resumed sweep that had
    finished its pass times nothing). ``points``: grid label -> point; ``fixed``: the sweep's
    fixed trial settings. Returns (CPU, GPU) timings by grid label."""
    passes = [(INFERENCE_FILE, "CPU", lambda todo: time_architectures(
        todo, fixed, threads=threads))]
    if on_gpu:
        passes.append((INFERENCE_GPU_FILE, "GPU", lambda todo: time_architectures_on_a_gpu(
            todo, fixed)))
    found: list[dict[str, Any]] = []
    for name, where, measure in passes:
        timed = json.loads(read_experiment_file(settings, name) or "{}")
        todo = missing(points, timed)
        if todo:
            print(f"Timing {where} inference of each architecture alone (trials timed theirs "
                  "while others trained)...", flush=True)
            try:
                timed = {**timed, **measure(todo)}
            except Exception as exc:  # noqa: BLE001 - the sweep itself finished: keep its report
                print(f"warning: the {where} timing pass failed ({type(exc).__name__}: {exc}); "
                      "the ranking and report use the trials' own timings; --resume retries "
                      "it", file=sys.stderr, flush=True)
                found.append(timed)
                continue
            write_experiment_file(settings, name, json.dumps(timed, indent=2))
        found.append(timed)
    return found[0], (found[1] if on_gpu else {})
