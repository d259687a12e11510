"""Train one configuration without Ray (for a first look, debugging, or a single model).

    python -m segmodels --model deeplab --backbone mobilenet_v3_small --aspp --epochs 10 \
        --crop-size 128 --batch-size 8 --out runs/single
"""

from __future__ import annotations

import argparse
import sys

from segmodels.data import load_dataset
from segmodels.errors import SegsweepError
from segmodels.training import TrialConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segmodels", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic)")
    p.add_argument("--out", default="runs/single", help="folder for checkpoints and history")
    p.add_argument("--model", default="deeplab")
    p.add_argument("--backbone", default=None)
    p.add_argument("--aspp", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    for flag, kind in (("epochs", int), ("crop_size", int), ("batch_size", int), ("lr", float),
                       ("seed", int)):
        p.add_argument(f"--{flag.replace('_', '-')}", type=kind,
                       default=getattr(TrialConfig(), flag))
    args = p.parse_args(argv)
    from segmodels.data import SYNTHETIC_DIR, ensure_generated
    from segmodels.metrics import constant_predictor_miou
    from segmodels.training import LocalReporter, train_trial

    try:
        data = load_dataset(args.data or ensure_generated(SYNTHETIC_DIR.expanduser()))
        print(data.describe() + (" -- SYNTHETIC, pass --data for FloodNet"
                                 if data.synthetic else ""))
        config = {k: getattr(args, k) for k in ("model", "backbone", "aspp", "augment", "epochs",
                                                "crop_size", "batch_size", "lr", "seed")}
        history = train_trial(config, data, reporter=LocalReporter(args.out), log_dir=args.out)
    except SegsweepError as exc:  # a bad dataset or setting: one line; a bug keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    best = max(history, key=lambda row: row["val_miou"])
    print(f"best val mIoU {best['val_miou']:.3f} at epoch {best['epoch']} "
          f"(constant-prediction baseline {constant_predictor_miou(data.val):.3f}); "
          f"checkpoints in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
