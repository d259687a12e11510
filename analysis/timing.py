"""CPU inference times for a sweep that stopped before its own timing pass.

A sweep times each architecture alone after its last trial (sweeps/inference_pass.py); one
stopped earlier (Ctrl-C and never resumed, a killed driver) has no ``inference_cpu.json``, and
its report could not place the models on the speed axis. Timing needs no trained weights, so
the report can measure them itself, with the thread count the sweep's trials had.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sweeps.storage import INFERENCE_FILE


def missing_timing_note(run_dir: Path) -> str | None:
    """What the report says when the sweep left no CPU timings, and how to get them."""
    if (run_dir / INFERENCE_FILE).is_file():
        return None
    return (f"no quiet CPU inference times: {INFERENCE_FILE} is missing (the sweep is still "
            "running, or stopped before its timing pass; CPU times shown, if any, are the trials' "
            "own, taken while other trials trained); measure them with: "
            f"python -m analysis {run_dir} --time-inference")


def time_sweep_architectures(run_dir: Path, meta: dict[str, Any]) -> Path:
    """Time every architecture of the sweep's grid on this machine; writes ``inference_cpu.json``
    (atomically: a stopped run leaves the old file or none) and returns its path."""
    from sweeps.inference_pass import time_architectures

    threads = int((meta.get("resources_per_trial") or {}).get("cpu") or 1)
    timings = time_architectures(meta["points"], meta.get("fixed", {}), threads=threads)
    target = run_dir / INFERENCE_FILE
    staging = target.with_name(target.name + ".partial")
    staging.write_text(json.dumps(timings, indent=2))
    os.replace(staging, target)
    return target
