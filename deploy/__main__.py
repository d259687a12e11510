"""``python -m deploy RUN`` (also ``segsweep export RUN``): the sweep's winner as a checked,
deployable model with its card. Exit 0: exported and checked; 1: exported but the check
failed (the file is kept, named FAILED); 2: refused (one line says why)."""

from __future__ import annotations

import argparse
import sys
import traceback

from deploy.formats import FORMATS
from segmodels.errors import SegsweepError


def build_parser(prog: str = "python -m deploy") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("run", help="a sweep's folder (STORAGE/NAME)")
    p.add_argument("--trial", default=None,
                   help="the trial to export, by its name in the ranking (default: the best)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--format", dest="fmt", choices=list(FORMATS), default="onnx")
    p.add_argument("--out", default=None, help="folder to write (default RUN/export/NAME/)")
    p.add_argument("--check-images", type=int, default=None,
                   help="validation images the check runs on (default: all)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the latency")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per runtime")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m deploy") -> int:
    args = build_parser(prog).parse_args(argv)
    from deploy.export import ExportCheckFailed, export_run

    try:
        result = export_run(args.run, trial=args.trial, checkpoint=args.checkpoint,
                            fmt=args.fmt, out=args.out, check_images=args.check_images,
                            threads=args.threads, repeats=args.repeats)
    except ExportCheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SegsweepError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check = result.check
    print(f"Exported {result.name} ({result.notes[0]}) from {result.checkpoint}")
    print(f"  model: {result.model_file}")
    print(f"  check on {check.images} validation image(s): classes agree on "
          f"{check.agreement:.4%} of pixels, mIoU {check.miou_exported:.4f} exported vs "
          f"{check.miou_pytorch:.4f} PyTorch, max |logit difference| "
          f"{check.max_abs_logit_difference:.1e}")
    for lat in result.latency.values():
        print(f"  {lat.runtime}: {lat.median_ms:.1f} ms per {lat.width}x{lat.height} frame "
              f"(range {lat.low_ms:.1f}-{lat.high_ms:.1f} over {lat.repeats} runs, "
              f"{lat.threads} thread(s))")
    print(f"  card: {result.folder / 'MODEL_CARD.md'}")
    print(f"  predict: python -m segsweep_predict {result.folder} IMAGES... --out DIR")
    return 0


if __name__ == "__main__":
    from segmodels.program import exit_program

    exit_program(main())
