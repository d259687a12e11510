"""Each architecture's costs, measured once before training, where they are true.

Latency and size depend on the network and the frame, not on lr or crop size, and a trial
timed while others train on the same cores disagrees by up to 2x. So before the first trial
starts, every architecture the sweep may train is built once and timed alone (CPU: in the
driver at a trial's thread count, nothing else running yet; GPU: in one Ray task holding a
whole GPU), the figures go into the sweep's ``costs.json`` (a resume measures only what is
missing) and into the after-sweep timing file (so nothing is timed twice), and an
architecture over a budget is marked rejected: its trials report the figures and never train.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from segmodels.models import model_size_mb, parameter_count
from segmodels.training import TrialConfig, trial_settings
from sweeps.inference_pass import time_architectures, time_architectures_on_a_gpu
from sweeps.objectives import OBJECTIVES, REJECTED, over_budget
from sweeps.prepare import network_without_weights
from sweeps.record import read_experiment_file, write_experiment_file
from sweeps.settings import SweepSettings
from sweeps.storage import COSTS_FILE, INFERENCE_FILE, INFERENCE_GPU_FILE


def needed(objectives: list[str], budgets: dict[str, float]) -> list[str]:
    """The costs to measure before training: every cost objective and every budget."""
    return [n for n in OBJECTIVES if n != "miou" and (n in objectives or n in budgets)]


def _static_costs(points: dict[str, dict[str, Any]], fixed: dict[str, Any]
                  ) -> dict[str, dict[str, float | int]]:
    """Size and parameters from the network built on the meta device (no memory, no time)."""
    found: dict[str, dict[str, float | int]] = {}
    by_network: dict[Any, dict[str, float | int]] = {}
    for label, point in points.items():
        cfg = TrialConfig.from_dict(trial_settings(fixed, point))
        key = cfg.network_key()
        if key not in by_network:
            model = network_without_weights(cfg)
            by_network[key] = {"size_mb": model_size_mb(model),
                               "params": parameter_count(model)}
        found[label] = by_network[key]
    return found


Timer = Callable[[dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]


def measure_costs(settings: SweepSettings, points: dict[str, dict[str, Any]],
                  fixed: dict[str, Any], *, threads: int,
                  cpu_timer: Timer | None = None, gpu_timer: Timer | None = None
                  ) -> dict[str, dict[str, Any]]:
    """label -> {cost name: figure, "rejected": reason or None} for every point, from the
    sweep's ``costs.json`` where it holds them, else measured now (each architecture once)
    and stored. ``cpu_timer``/``gpu_timer`` replace the timing passes (tests count calls)."""
    wanted = needed(settings.objectives or [], settings.budgets)
    stored: dict[str, dict[str, Any]] = json.loads(
        read_experiment_file(settings, COSTS_FILE) or "{}")
    todo = {label: p for label, p in points.items()
            if label not in stored or any(n not in stored[label] for n in wanted)}
    if todo:
        print(f"Measuring {', '.join(wanted)} of {len(todo)} architecture(s) alone before "
              "training...", flush=True)
        static = _static_costs(todo, fixed)
        timings = {}
        if "cpu_ms" in wanted:
            timer = cpu_timer or (lambda t: time_architectures(t, fixed, threads=threads))
            timings["cpu_ms"] = _store_timings(settings, INFERENCE_FILE, timer(todo))
        if "gpu_ms" in wanted:
            timer = gpu_timer or (lambda t: time_architectures_on_a_gpu(t, fixed))
            timings["gpu_ms"] = _store_timings(settings, INFERENCE_GPU_FILE, timer(todo))
        for label in todo:
            figures = {**stored.get(label, {}), **static[label]}
            figures |= {name: timed[label]["ms"] for name, timed in timings.items()}
            stored[label] = figures
    for label in points:  # budgets are the sweep's: judged afresh from the stored figures
        stored[label][REJECTED] = over_budget(stored[label], settings.budgets)
    write_experiment_file(settings, COSTS_FILE, json.dumps(stored, indent=2))
    return {label: stored[label] for label in points}


def _store_timings(settings: SweepSettings, name: str,
                   measured: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Add the timings to the after-sweep timing file, which then times nothing again."""
    timed = json.loads(read_experiment_file(settings, name) or "{}")
    write_experiment_file(settings, name, json.dumps({**timed, **measured}, indent=2))
    return measured


def reported(costs: dict[str, Any]) -> dict[str, Any]:
    """What a trial reports of its architecture's costs, under the objectives' columns."""
    row = {OBJECTIVES[name].column: value for name, value in costs.items()
           if name in OBJECTIVES and value is not None and not (
               isinstance(value, float) and math.isnan(value))}
    if costs.get(REJECTED):
        row[REJECTED] = costs[REJECTED]
    return row


def rejected(costs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """label -> why it is over a budget."""
    return {label: c[REJECTED] for label, c in costs.items() if c.get(REJECTED)}


__all__ = ["REJECTED", "measure_costs", "needed", "rejected", "reported"]
