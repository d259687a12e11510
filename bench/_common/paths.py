"""Where the benchmarks run and keep what they make, and the environment they run CLIs in."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"  # git-ignored: cached datasets, logs, sweeps kept with --keep


def clean_env() -> dict[str, str]:
    """The environment of a CLI run: no usage stats, unbuffered output, and one local node,
    never a cluster someone else started."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return env
