"""Deployed latency: onnxruntime against eager PyTorch, per homework model, on the CPU.

Each model (untrained weights: latency does not depend on them) is exported the way
``segsweep export`` exports it (``deploy.formats``: RGB pixels in, the normalization inside),
checked against PyTorch on two frames, then timed side by side on a 1000x750 frame
(``deploy.latency.side_by_side``: one warm-up each, the runtimes interleaved run by run, every
run kept), at the threads given. With a GPU, onnxruntime-gpu's CUDA provider and PyTorch on
CUDA are timed the same way.

    python bench/export.py                       # the five homework models, 1 thread
    python bench/export.py --threads 2 --repeats 9
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as C

SMOKE = {"height": 48, "width": 64, "repeats": 3, "models": "unet", "unet_channels": "4,16"}
MODELS = C.HOMEWORK_MODELS


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--models", default="all", help=f"comma-separated or 'all': {', '.join(MODELS)}")
    p.add_argument("--height", type=int, default=750)
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5, help="timed runs per runtime")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of both runtimes")
    p.add_argument("--unet-channels", default=None, help="UNet min,max channels (smoke)")
    return p


def model_rows(label: str, spec: dict, args, folder: Path) -> list[C.Row]:
    import numpy as np
    import torch

    from deploy.check import check_export
    from deploy.formats import export_onnx, run_onnx, run_pytorch
    from deploy.latency import side_by_side
    from segmodels.models import create_model

    kwargs = dict(spec)
    if label == "unet" and args.unet_channels:
        lo, hi = (int(v) for v in args.unet_channels.split(","))
        kwargs.update(min_channels=lo, max_channels=hi)
    torch.manual_seed(0)
    model = create_model(kwargs.pop("model"), pretrained=None, **kwargs).eval()
    path = export_onnx(model, folder / f"{label.replace('/', '_')}.onnx")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8),
              rng.integers(0, 256, (args.height // 2 + 3, args.width // 2 + 5, 3), dtype=np.uint8)]
    check = check_export(run_pytorch(model, args.threads), run_onnx(path, args.threads), frames,
                         [np.zeros(f.shape[:2], np.uint8) for f in frames])
    print(f"{label}: exported, check {'passed' if check.passed else 'FAILED'}; timing ...",
          flush=True)
    cpu = side_by_side({"onnxruntime": run_onnx(path, args.threads),
                        "pytorch": run_pytorch(model, args.threads)}, threads=args.threads,
                       height=args.height, width=args.width, repeats=args.repeats)
    ort, eager = cpu["onnxruntime"], cpu["pytorch"]
    frame = f"{args.width}x{args.height}, {args.threads} thread(s)"
    rows = [
        C.check(f"export: classes agree with PyTorch, {label}", check.agreement, ">=", 0.999,
                "{:.4f}"),
        C.info(f"export: onnxruntime ms per frame (median, range), {label}, {frame}",
               f"{ort.median_ms:.1f} ({ort.low_ms:.1f} to {ort.high_ms:.1f})", "{}"),
        C.info(f"export: PyTorch ms per frame (median, range), {label}, {frame}",
               f"{eager.median_ms:.1f} ({eager.low_ms:.1f} to {eager.high_ms:.1f})", "{}"),
        C.info(f"export: speed-up onnxruntime over PyTorch, {label}",
               eager.median_ms / ort.median_ms, "{:.2f}"),
    ]
    rows += _cuda_rows(label, model, path, args)
    return rows


def _cuda_rows(label: str, model, path: Path, args) -> list[C.Row]:
    import torch

    from deploy.formats import cuda_runners
    from deploy.latency import side_by_side

    runners = cuda_runners(model, path)
    if not runners:
        return []
    gpu = side_by_side(runners, threads=args.threads, height=args.height, width=args.width,
                       repeats=args.repeats)
    name = torch.cuda.get_device_name(0)
    return [C.info(f"export: {runtime} ms per frame on {name}, {label}", lat.median_ms,
                   "{:.2f}") for runtime, lat in gpu.items()]


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    names = list(MODELS) if args.models == "all" else args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            rows += model_rows(name, MODELS[name], args, Path(folder))
    C.emit(rows, args, f"export: onnxruntime vs eager PyTorch, {args.width}x{args.height} "
                       "frame on CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
