"""python -m segsweep_predict MODEL_DIR IMAGES... --out DIR

For each image: ``NAME.classes.png`` (class ids 0-7, one byte per pixel) and
``NAME.overlay.png`` (the class colours over the image). Unreadable images are named and
skipped; the exit code is 1 when any was, 2 when the model cannot be used."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segsweep_predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the folder `segsweep export` wrote")
    p.add_argument("images", nargs="+", help="image files (any size)")
    p.add_argument("--out", required=True, help="folder for the predictions")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    args = p.parse_args(argv)

    from segsweep_predict import ImageError, ModelError, Predictor, overlay, read_image

    try:
        predictor = Predictor(args.model, threads=args.threads)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed, started, total = 0, time.monotonic(), len(args.images)
    for i, name in enumerate(args.images, 1):
        try:
            image = read_image(name)
        except ImageError as exc:
            print(f"error: {exc}; skipped", file=sys.stderr)
            failed += 1
            continue
        classes = predictor.predict(image)
        stem = out / Path(name).stem
        Image.fromarray(classes, "L").save(f"{stem}.classes.png")
        Image.fromarray(overlay(image, classes, predictor.palette)).save(f"{stem}.overlay.png")
        elapsed = time.monotonic() - started
        print(f"[{i}/{total}] {name}: {image.shape[1]}x{image.shape[0]} "
              f"({elapsed / i:.2f} s per image, {elapsed / i * (total - i):.0f} s left)",
              file=sys.stderr, flush=True)
    print(f"{total - failed} of {total} image(s) predicted into {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
