"""Reading a stored sweep's files directly, to check analysis against the source."""

from __future__ import annotations

import json
from pathlib import Path

GRID = """\
axes:
  model: [deeplab]
  backbone: [mobilenet_v3_small]
  aspp: [false, true]
  augment: [false, true]
fixed:
  inference_height: 64
  inference_width: 96
  log_images: 0
"""
N_TRIALS = 4
EPOCHS = 2


def result_rows(trial_dir: str | Path) -> list[dict]:
    """What the trial itself reported, straight from its result.json."""
    return [json.loads(line) for line in Path(trial_dir, "result.json").read_text().splitlines()]


def trial_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "params.json").is_file())
