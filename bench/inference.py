"""Inference timing: is the per-frame figure a trial records right, and what would speed it up?

For each model, the figure a trial records (``segmodels.models.cost.time_inference`` on CPU, a
1000x750 frame, the trial's thread count and ``inference_repeats``) alternates with a bare
loop over the same model (``model.eval()``, ``torch.inference_mode()``, one warm-up frame,
then the median of as many timed frames), A B B A, and the medians are compared. Target:
within 10%. The default thread count is what a trial of the homework grid gets on this
machine (the product's even share of the CPUs; the post-sweep inference pass uses it too).

Then the CPU speed options, each as a speed-up over the bare loop at the trial's threads:
thread count (the product's option: ``--cpus-per-trial`` / ``num_threads``; here all cores vs
the trial's share), ``channels_last`` memory format and ``torch.compile`` (``--compile``;
neither of the two is offered by the product today).

    python bench/inference.py                    # the two fastest homework models
    python bench/inference.py --models unet
    python bench/inference.py --models all --compile
"""

from __future__ import annotations

import os
import statistics
import time

import _common as C

# Medians of a few millisecond frames: one stall of a busy machine cannot make the ratio 10x.
SMOKE = {"height": 64, "width": 64, "repeats": 5, "models": "unet", "unet_channels": "4,16",
         "rounds": 2, "option_repeats": 3, "threads": 1}
MODELS = C.HOMEWORK_MODELS


def build_parser():
    from segmodels.training import TrialConfig

    defaults = TrialConfig()
    p = C.parser(__doc__)
    p.add_argument("--models", default="deeplab/mobilenet_v3_small/aspp,deeplab/resnet18/no-aspp",
                   help=f"comma-separated, or 'all': {', '.join(MODELS)}")
    p.add_argument("--height", type=int, default=defaults.inference_height)
    p.add_argument("--width", type=int, default=defaults.inference_width)
    p.add_argument("--repeats", type=int, default=defaults.inference_repeats,
                   help="timed frames (the trial's inference_repeats)")
    p.add_argument("--threads", type=int, default=None,
                   help="the trial's CPUs (default: the product's share for the homework grid)")
    p.add_argument("--all-threads", type=int, default=os.cpu_count() or 1,
                   help="thread count the speed option is compared at (default: all cores)")
    p.add_argument("--rounds", type=int, default=2,
                   help="bare loop and time_inference alternate A B B A per 2 rounds")
    p.add_argument("--option-repeats", type=int, default=2, help="timed frames per option")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow)")
    p.add_argument("--unet-channels", default=None, help="UNet min,max channels (smoke)")
    return p


def bare_ms(model, frame, repeats: int) -> float:
    """The bare loop: eval, inference_mode, one warm-up frame, median of ``repeats``."""
    import torch

    model.eval()
    times = []
    with torch.inference_mode():
        model(frame)
        for _ in range(repeats):
            start = time.perf_counter()
            model(frame)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def model_rows(label: str, spec: dict, args) -> list[C.Row]:
    import torch

    from segmodels.models import create_model, time_inference

    kwargs = dict(spec)
    if label == "unet" and args.unet_channels:
        lo, hi = (int(v) for v in args.unet_channels.split(","))
        kwargs.update(min_channels=lo, max_channels=hi)
    torch.set_num_threads(args.threads)
    model = create_model(kwargs.pop("model"), **kwargs)
    frame = torch.randn(1, 3, args.height, args.width)
    print(f"{label}: bare loop and time_inference, {args.rounds} round(s) ...", flush=True)
    bare_ms(model, frame, 1)  # first frames in a process pay one-time set-up: not compared
    bare_runs, recorded_runs = [], []
    for i in range(args.rounds):  # A B B A ...: a steady drift of the machine cancels out
        for first in ((True, False) if i % 2 == 0 else (False, True)):
            if first:
                bare_runs.append(bare_ms(model, frame, args.repeats))
            else:
                recorded_runs.append(time_inference(model, "cpu", height=args.height,
                                                    width=args.width, repeats=args.repeats))
    bare, recorded = statistics.median(bare_runs), statistics.median(recorded_runs)
    ratio = recorded / bare
    rows = [
        C.Row(f"inference: time_inference / bare loop, {label}", f"{ratio:.3f}", "0.90..1.10",
              "PASS" if 0.9 <= ratio <= 1.1 else "FAIL"),
        C.info(f"inference: bare ms per {args.width}x{args.height} frame, {args.threads} "
               f"thread(s), {label}", bare, "{:.0f}"),
    ]
    print(f"{label}: speed options, {args.rounds} round(s) ...", flush=True)
    variants = {"base": (args.threads, False, model), "threads": (args.all_threads, False, model),
                "channels_last": (args.threads, True, model)}
    if args.compile:
        compiled = torch.compile(model)
        with C.Timer() as t, torch.inference_mode():
            compiled.eval()(frame)
        rows.append(C.info(f"inference: torch.compile first call [s], {label}", t.seconds,
                           "{:.0f}"))
        variants["compile"] = (args.threads, False, compiled)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.rounds):  # rotate the order each round: drift spreads evenly
        names = list(variants)[i % len(variants):] + list(variants)[:i % len(variants)]
        for name in names:
            threads, channels_last, m = variants[name]
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            torch.set_num_threads(threads)
            m.to(memory_format=fmt)
            times[name].append(bare_ms(m, frame.contiguous(memory_format=fmt),
                                       args.option_repeats))
    model.to(memory_format=torch.contiguous_format)
    torch.set_num_threads(args.threads)
    base = statistics.median(times["base"])
    labels = {"threads": "all cores vs the trial's threads (offered)",
              "channels_last": "channels_last (not offered)",
              "compile": "torch.compile (not offered)"}
    for name in list(variants)[1:]:
        rows.append(C.info(f"inference: speed-up {labels[name]}, {label}",
                           base / statistics.median(times[name]), "{:.2f}"))
    return rows


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    if args.threads is None:
        args.threads = C.homework_cpus_per_trial()
    names = list(MODELS) if args.models == "all" else args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    rows = []
    for name in names:
        rows += model_rows(name, MODELS[name], args)
    C.emit(rows, args, f"inference: {args.width}x{args.height} frame on CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
