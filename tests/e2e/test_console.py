"""The console of a sweep read through a pipe (a CI log): plain lines with the sweep's ETA, the
ranking, and none of Ray's result boxes, status tables or second TensorBoard line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_FLAGS = ["--epochs", "2", "--crop-size", "64", "--batch-size", "4",
              "--inference-repeats", "1", "--inference-size", "64x48", "--no-report",
              "--no-dashboard"]
GRID = ("axes:\n  model: [unet]\n  augment: [false]\n  lr: [0.01, 0.003, 0.001]\n"
        "fixed:\n  model_kwargs: {min_channels: 4, max_channels: 16}\n")
RAYS_CONSOLE = ("Trial status:", "started with configuration", "Trial unet", "╭",
                "To visualize your results with TensorBoard", "View detailed results here",
                "Wrote the latest version of all result files")
pytestmark = pytest.mark.slow


def test_a_three_trial_sweep_says_its_progress_and_eta_in_few_plain_lines(tmp_path,
                                                                          tiny_dataset_dir):
    grid = tmp_path / "three.yaml"
    grid.write_text(GRID)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tune_app.py"), "--grid", str(grid),
                           "--data", str(tiny_dataset_dir), *TINY_FLAGS,
                           "--storage", str(tmp_path / "runs")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-3000:]
    lines = console.splitlines()
    print(f"{len(lines)} console lines:\n{console}")
    assert len(lines) < 60, console
    assert "\x1b[" not in console  # not a terminal: no cursor moves
    assert re.search(r"^Sweep: \d/3 trials done, .* ETA \d+(m\d\ds|s) \(\d\d:\d\d\)$",
                     proc.stdout, re.M), proc.stdout
    assert proc.stdout.count(": done, 2/2 epochs, best mIoU ") == 3, proc.stdout
    assert "Ranking" in proc.stdout
    assert proc.stdout.count("tensorboard --logdir") == 2  # the start line, and the last line
    assert f"tensorboard --logdir {tmp_path / 'runs' / 'three'}" in proc.stdout
    for ray_line in RAYS_CONSOLE:
        assert ray_line not in console, ray_line
