"""``python -m analysis RUN_DIR [--out DIR] [--tolerance T] [--no-examples] [--time-inference]``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.loading import ExperimentError, read_sweep_meta
from analysis.rankings import DEFAULT_TOLERANCE
from segmodels.errors import SegsweepError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Plots, rankings, per-class examples and one HTML report of a stored sweep.")
    p.add_argument("run_dir", help="experiment folder STORAGE/NAME (holds segsweep.json)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="relative difference below which two models tie (default 0.05)")
    p.add_argument("--no-examples", action="store_true",
                   help="skip loading the best checkpoint and predicting validation images")
    p.add_argument("--time-inference", action="store_true",
                   help="time each architecture's CPU inference on this machine first (for a "
                        "sweep stopped before its own timing pass; replaces stored figures)")
    return p


def _time_inference(run_dir: Path, meta: dict) -> Path:
    from analysis.timing import time_sweep_architectures

    print("timing CPU inference, one architecture at a time...", flush=True)
    try:
        return time_sweep_architectures(run_dir, meta)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ExperimentError(f"{run_dir}: --time-inference failed ({type(exc).__name__}: "
                              f"{exc}); the report was not written") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.tolerance < 1:
        print(f"error: --tolerance must be in [0, 1), got {args.tolerance}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir).expanduser()
    try:
        meta = read_sweep_meta(run_dir)  # a wrong folder: refused before the report loads
        from analysis.report import build_report

        if args.time_inference:
            print(f"wrote {_time_inference(run_dir, meta)}")
        path = build_report(args.run_dir, args.out, args.tolerance, not args.no_examples)
    except SegsweepError as exc:  # ExperimentError, a CheckpointError, ...: user-facing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    from segmodels.program import exit_program

    exit_program(main())
