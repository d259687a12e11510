"""Where the benchmarks run and keep what they make."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"  # git-ignored: cached datasets, logs, sweeps kept with --keep
