"""Time per frame of the exported model next to eager PyTorch's, measured the same way in the
same run: one warm-up each, then timed runs interleaved between the runtimes (a machine that
slows down slows all of them), every run kept (median and range), threads stated."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from deploy.formats import Runner


@dataclass(frozen=True)
class Latency:
    runtime: str
    median_ms: float
    low_ms: float
    high_ms: float
    threads: int
    height: int
    width: int
    repeats: int


def side_by_side(runners: dict[str, Runner], *, threads: int, height: int = 750,
                 width: int = 1000, repeats: int = 5) -> dict[str, Latency]:
    """runtime -> its latency per (1, 3, height, width) frame, ``repeats`` timed runs each."""
    frame = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    runs: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        run(frame)  # warm-up: allocations, lazy initialisation
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(frame)
            runs[name].append((time.perf_counter() - start) * 1000)
    return {name: Latency(name, statistics.median(ms), min(ms), max(ms), threads, height,
                          width, repeats) for name, ms in runs.items()}
