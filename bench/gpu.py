"""GPU trial: how close one trial comes to what the GPU can do, side by side in one run.

For every homework architecture, with augmentation on (the course's crop 256 and batch 16):

  (a) a bare training loop on device-resident tensors, the limit: the trial's model, precision
      (``resolve_precision``: its exceptions included), memory format, cuDNN autotuning and
      Adam, stepping through crops already on the device (no data work at all);
  (v) bare batched inference over the validation frames, device-resident and batched as the
      trial batches them: validation's limit, frames/s;
  (b) ``segmodels.training.trial.train_trial`` on the same model, batch and crops, in this process;
      its steady epochs (after the first) split into training (``epoch_seconds`` minus
      ``val_seconds``), validation (``val_seconds``) and other (between two reports, outside
      ``epoch_seconds``: metrics, the checkpoint's state).

Rows: (b)/(a) training crops/s (target >= 0.8 on a GPU); (b)'s whole epoch against the limit
(crops / (a) + frames / (v)); the epoch split; (b)'s first epoch, start-up included.

``--course-scale`` then trains the homework grid's six trials one after another at the
course's scale (50 epochs, 290 train / 112 validation synthetic images at 1000x750, every trial
its full epochs, the run's crop and batch) and compares their wall time with the GPU limit
measured above: the sum over trials of planned crops / (a) + validation frames / (v). Target
<= 1.5x.

``--packing`` instead measures trials sharing one GPU (sweeps/packing.py's rule): for every
homework architecture, 1, 2 and 4 processes each run (a) on the same GPU at once, each capped to
its share of GPU memory as a trial is; the row is their summed crops/s, beside the rule's share
and the best measured packing. Target: the rule's packing within 10% of the best.

Without CUDA it runs at smoke sizes on CPU tensors (the trial takes its CPU data path there)
and prints the same rows without targets: the figures say nothing about a GPU, but the code and
its arithmetic cannot rot.

    python bench/gpu.py                        # 5 architectures, 512 crops per epoch
    python bench/gpu.py --course-scale         # + the homework grid at course scale
    python bench/gpu.py --data-path host       # (b) with the CPU loader, for comparison
    python bench/gpu.py --packing              # 1, 2, 4 trials per GPU against the rule
    python bench/gpu.py --smoke
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import time
import traceback

import _common as C

# At smoke size (the figures mean nothing there) the UNet is a narrow one (its label stays
# "unet"; the course's has 8.6 M parameters) and torch computes on one thread: two threads on
# two cores other jobs hold take seconds for a step that one thread does in milliseconds.
SMOKE = {"height": 96, "width": 128, "n_train": 4, "n_val": 2, "crops_per_image": 1,
         "crop_size": 32, "batch_size": 4, "epochs": 2, "steps": 3, "warmup_steps": 1,
         "architectures": 2, "distinct": 4, "packing_seconds": 0.2, "course_epochs": 2,
         "course_train": 4, "course_val": 2, "unet_channels": "4,16", "threads": 1}
DATA_PATHS = {"auto": None, "device": True, "host": False}  # train_trial's data_on_device
PACKINGS = (1, 2, 4)  # trials per GPU that --packing measures


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--height", type=int, default=750, help="image size")
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=64, help="training images")
    p.add_argument("--n-val", type=int, default=16, help="validation images")
    p.add_argument("--crops-per-image", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3, help="(b)'s epochs; the first is warm-up")
    p.add_argument("--steps", type=int, default=40, help="(a)'s timed steps after a warm-up")
    p.add_argument("--warmup-steps", type=int, default=3,
                   help="(a)'s untimed first steps (cuDNN tries its algorithms on them)")
    p.add_argument("--unet-channels", default=None,
                   help="the UNet's min,max channels (default: the homework's UNet)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of (a), (v) and (b) (default: torch's own; (b) gets "
                        "every CPU)")
    p.add_argument("--architectures", type=int, default=None, help="the first N only")
    p.add_argument("--distinct", type=int, default=16, help="scenes rendered per split")
    p.add_argument("--data-path", choices=list(DATA_PATHS), default="auto",
                   help="(b)'s training data: auto (device on CUDA), device, host")
    p.add_argument("--course-scale", action="store_true", help="also the homework grid, 50 "
                   "epochs, 290/112 images at 1000x750")
    p.add_argument("--packing", action="store_true", help="only trials sharing a GPU: 1, 2, 4 "
                   "per GPU against sweeps/packing.py's rule")
    p.add_argument("--packing-seconds", type=float, default=10.0, help="each packing's window")
    p.add_argument("--course-epochs", type=int, default=50)
    p.add_argument("--course-train", type=int, default=290)
    p.add_argument("--course-val", type=int, default=112)
    return p


def architectures(args) -> dict[str, dict]:
    """Architecture label -> the first homework point of it, with augmentation on."""
    from segmodels.training import TrialConfig
    from sweeps.grids import load_grid

    found: dict[str, dict] = {}
    for point in load_grid("homework").points:
        config = {**point, "augment": True}
        found.setdefault(TrialConfig.from_dict(config).architecture, config)
    return dict(list(found.items())[: args.architectures or None])


def trial_config(args, point: dict, epochs: int) -> dict:
    config = {**point, "epochs": epochs, "crop_size": args.crop_size,
              "batch_size": args.batch_size, "crops_per_image": args.crops_per_image,
              "inference_repeats": 1, "log_images": 0}
    if args.unet_channels and point.get("model") == "unet":
        lo, hi = (int(v) for v in args.unet_channels.split(","))
        config["model_kwargs"] = {"min_channels": lo, "max_channels": hi}
    return config


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(config: dict, data, device, warmup: int = 3):
    """(a)'s model and its step: Adam on device-resident crops, no data work, after
    ``warmup`` steps. Returns (model, step(i) -> crops stepped, memory format, autocast dtype
    or None)."""
    import torch
    from torch import nn

    from segmodels.classes import IGNORE_INDEX
    from segmodels.models import create_model
    from segmodels.training import (
        DeviceCrops,
        TrialConfig,
        resolve_memory_format,
        resolve_precision,
    )

    cfg = TrialConfig.from_dict(config)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    precision = resolve_precision(cfg.precision, accelerator, cfg.architecture)
    amp = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    fmt = resolve_memory_format(cfg.memory_format, accelerator)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **{**cfg.model_args(), "pretrained": None})
    model = model.to(device, memory_format=fmt).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    crops = DeviceCrops(data.train.images, data.train.masks, crop_size=cfg.crop_size,
                        augment=False, crops_per_image=cfg.crops_per_image,
                        batch_size=cfg.batch_size, device=device, seed=cfg.seed)
    batches = [(x.contiguous(memory_format=fmt), y) for x, y in list(crops)[:4]]

    def step(i: int) -> int:
        images, masks = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_fn(model(images), masks)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return len(images)

    for i in range(warmup):  # cuDNN tries its algorithms on the first steps
        step(i)
    _sync(device)
    return model, step, fmt, amp


def bare_rates(config: dict, data, device, steps: int,
               warmup: int = 3) -> tuple[float, float]:
    """(a) crops/s of Adam steps on device-resident crops, (v) frames/s of batched inference."""
    import torch

    from segmodels.training import TrialConfig, ValidationBatches, pixels_per_batch

    cfg = TrialConfig.from_dict(config)
    model, step, fmt, amp = bare_loop(config, data, device, warmup)
    with C.Timer() as train:
        crops = sum(step(i) for i in range(steps))
        _sync(device)
    crops_per_second = crops / train.seconds

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    frames = ValidationBatches(data.val.images, data.val.masks, device,
                               pixels_per_batch(cfg.batch_size, cfg.crop_size, accelerator))
    model.eval()

    def validate() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp,
                                                    enabled=amp is not None):
            for images, _ in frames:
                model(images.contiguous(memory_format=fmt)).argmax(1)
        _sync(device)

    validate()  # warm-up
    with C.Timer() as val:
        validate()
    return crops_per_second, len(data.val) / val.seconds


class Clock:
    """(b)'s reporter: when each epoch was reported, and its row."""

    def __init__(self):
        self.times: list[float] = []
        self.rows: list[dict] = []

    def report(self, metrics, checkpoint) -> None:
        self.times.append(time.perf_counter())
        self.rows.append(metrics)


def trial_run(config: dict, data, data_path: str,
              threads: int | None = None) -> tuple[float, Clock]:
    from segmodels.training import train_trial

    clock = Clock()
    start = time.perf_counter()
    train_trial(config, data, reporter=clock, cpus=threads or os.cpu_count(),
                time_cpu_inference=False, data_on_device=DATA_PATHS[data_path])
    return start, clock


def architecture_rows(args, data, device, on_gpu: bool) -> tuple[list[C.Row], dict]:
    from segmodels.training import TrialConfig, resolve_memory_format, resolve_precision

    rows, limits = [], {}
    crops = len(data.train) * args.crops_per_image
    accelerator = "gpu" if on_gpu else "cpu"
    for label, point in architectures(args).items():
        config = trial_config(args, point, args.epochs)
        cfg = TrialConfig.from_dict(config)
        print(f"{label}: bare loop, bare validation, trial ...", flush=True)
        a, v = bare_rates(config, data, device, args.steps, args.warmup_steps)
        limits[label] = (a, v)
        start, clock = trial_run(config, data, args.data_path, args.threads)
        steady = range(1, len(clock.rows))
        train = C.mean([clock.rows[i]["epoch_seconds"] - clock.rows[i]["val_seconds"]
                        for i in steady])
        val = C.mean([clock.rows[i]["val_seconds"] for i in steady])
        other = C.mean([clock.times[i] - clock.times[i - 1] - clock.rows[i]["epoch_seconds"]
                        for i in steady])
        ratio = (crops / train) / a
        what = f"gpu: (b)/(a) training crops/s, {label}"
        rows.append(C.check(what, ratio, ">=", 0.8) if on_gpu else C.info(what, ratio))
        rows += [
            C.info(f"gpu: (a) bare training crops/s / (v) bare validation frames/s, {label}",
                   f"{a:.1f} / {v:.2f}"),
            C.info(f"gpu: (b) epoch / its limit (crops/(a) + frames/(v)), {label}",
                   (train + val + other) / (crops / a + len(data.val) / v)),
            C.info(f"gpu: (b) seconds per epoch, training / validation / other, {label}",
                   f"{train:.3f} / {val:.3f} / {other:.3f}"),
            C.info(f"gpu: (b) first epoch incl. start-up [s], {label}",
                   clock.times[0] - start, "{:.2f}"),
            C.info(f"gpu: precision / memory format, {label}",
                   f"{resolve_precision(cfg.precision, accelerator, cfg.architecture)} / "
                   f"{str(resolve_memory_format(cfg.memory_format, accelerator))[6:]}"),
        ]
    return rows, limits


def course_rows(args, limits: dict, on_gpu: bool) -> list[C.Row]:
    """The homework grid at course scale, trial after trial, against the GPU limit."""
    from segmodels.data import load_dataset
    from segmodels.training import TrialConfig
    from sweeps.grids import load_grid

    data = load_dataset(C.synthetic_data(args.course_train, args.course_val, args.height,
                                         args.width, distinct=args.distinct))
    rows, wall, limit, unmeasured = [], 0.0, 0.0, []
    for label, point in load_grid("homework").by_label().items():
        config = {**trial_config(args, point, args.course_epochs), "crops_per_image": 1}
        # the point's architecture, as architectures() names it (--unet-channels aside)
        if (arch := TrialConfig.from_dict(point).architecture) not in limits:
            unmeasured.append(label)  # --architectures N: no limit to compare it with
            continue
        a, v = limits[arch]
        planned = args.course_epochs * (len(data.train) / a + len(data.val) / v)
        print(f"course scale: {label} ...", flush=True)
        start, _ = trial_run(config, data, args.data_path, args.threads)
        seconds = time.perf_counter() - start
        print(f"  {seconds:.1f} s, its limit {planned:.1f} s", flush=True)  # kept if cut short
        wall, limit = wall + seconds, limit + planned
        rows.append(C.info(f"gpu: course scale, wall / limit [s], {label}",
                           f"{seconds:.1f} / {planned:.1f}"))
    if unmeasured:
        rows.append(C.info("gpu: course scale, points left out (--architectures)",
                           ", ".join(unmeasured)))
    what = "gpu: course-scale homework grid, wall / GPU limit"
    rows.append(C.check(what, wall / limit, "<=", 1.5) if on_gpu else C.info(what, wall / limit))
    rows.append(C.info("gpu: course-scale homework grid, wall [min]", wall / 60, "{:.1f}"))
    return rows


def _packing_worker(inbox, outbox, data_root: str, device_type: str, threads: int) -> None:
    """One trial process of --packing. Per task (config, trials per GPU, seconds, warm-up
    steps): builds (a) capped to its share of GPU memory, warms up, answers "ready", waits for
    "go" (every process of the packing then steps at once) and answers (crops, seconds, peak
    GB)."""
    import torch

    from segmodels.data import load_dataset

    torch.set_num_threads(threads)
    data = load_dataset(data_root)
    device = torch.device(device_type)
    while (task := inbox.get()) is not None:
        config, trials, seconds, warmup = task
        try:
            if device.type == "cuda":
                torch.cuda.set_per_process_memory_fraction(1 / trials)  # as a trial caps itself
                torch.cuda.reset_peak_memory_stats()
            _, step, _, _ = bare_loop(config, data, device, warmup)
            outbox.put("ready")
            inbox.get()
            crops, i, start = 0, warmup, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for _ in range(5):  # then wait for the GPU: its queue stays short
                    crops, i = crops + step(i), i + 1
                _sync(device)
            seconds = time.perf_counter() - start
            peak = (torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda"
                    else float("nan"))
            del step
            if device.type == "cuda":
                torch.cuda.empty_cache()
            outbox.put((crops, seconds, peak))
        except Exception:
            outbox.put(traceback.format_exc())


def _answers(outbox, workers, n: int) -> list:
    """``n`` answers of the packing workers; a worker's error or death stops the benchmark."""
    found = []
    while len(found) < n:
        try:
            answer = outbox.get(timeout=10)
        except queue.Empty:
            dead = [w.pid for w in workers if not w.is_alive()]
            if dead:
                raise RuntimeError(f"packing worker(s) {dead} died") from None
            continue
        if isinstance(answer, str) and answer != "ready":
            raise RuntimeError(f"a packing worker failed:\n{answer}")
        found.append(answer)
    return found


def packing_rows(args, data_root, on_gpu: bool) -> list[C.Row]:
    """1, 2 and 4 processes of (a) on one GPU per homework architecture, against the rule."""
    from segmodels.training import TrialConfig
    from sweeps.packing import gpu_share, share_from_rates

    if on_gpu:
        context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    else:  # smoke on CPU: the workers fork from one server that imported torch once for all
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "segmodels.data", "segmodels.models",
                                        "segmodels.training.crops_device",
                                        "segmodels.training.precision"])
    outbox = context.Queue()
    inboxes = [context.Queue() for _ in range(max(PACKINGS))]
    threads = max(1, (os.cpu_count() or 1) // max(PACKINGS))
    workers = [context.Process(target=_packing_worker, daemon=True, args=(
        inbox, outbox, str(data_root), "cuda" if on_gpu else "cpu", threads)) for inbox in inboxes]
    for worker in workers:
        worker.start()
    rows = []
    try:
        for label, point in architectures(args).items():
            config = trial_config(args, point, epochs=1)
            rates, peaks = {}, {}
            for trials in PACKINGS:
                print(f"{label}: {trials} trial(s) per GPU ...", flush=True)
                for inbox in inboxes[:trials]:
                    inbox.put((config, trials, args.packing_seconds, args.warmup_steps))
                _answers(outbox, workers, trials)  # all warmed up
                for inbox in inboxes[:trials]:
                    inbox.put("go")
                answers = _answers(outbox, workers, trials)
                rates[trials] = sum(crops / seconds for crops, seconds, _ in answers)
                peaks[trials] = max(peak for _, _, peak in answers)
            rule = round(1 / gpu_share(TrialConfig.from_dict(config)))
            best = max(rates, key=rates.__getitem__)
            ratio = rates.get(rule, math.nan) / rates[best]
            what = f"packing: rule's summed crops/s / best measured, {label}"
            rows += [
                C.info(f"packing: summed crops/s, 1 / 2 / 4 trials per GPU, {label}",
                       " / ".join(f"{rates[k]:.1f}" for k in PACKINGS)),
                C.info(f"packing: GPU share, rule / best measured, {label}",
                       f"{1 / rule:g} / {1 / best:g}"),
                C.check(what, ratio, ">=", 0.9) if on_gpu else C.info(what, ratio),
                C.info(f"packing: share the rule gives this run's figures, {label}",
                       share_from_rates(rates), "{:g}"),
                C.info(f"packing: peak GPU memory per trial, 1 / 2 / 4 per GPU [GB], {label}",
                       " / ".join(f"{peaks[k]:.2f}" for k in PACKINGS) if on_gpu
                       else "- (no CUDA)"),
            ]
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for worker in workers:
            worker.join(timeout=30)
    return rows


def main(argv=None) -> int:
    import sys

    import torch

    argv = sys.argv[1:] if argv is None else list(argv)
    on_gpu = torch.cuda.is_available()
    args = C.parse(build_parser(), SMOKE, argv if on_gpu else [*argv, "--smoke"])
    if args.packing and args.course_scale:
        raise SystemExit("--packing measures trials sharing a GPU alone; drop --course-scale")
    device = torch.device("cuda" if on_gpu else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    from segmodels.data import load_dataset

    start = time.perf_counter()
    root = C.synthetic_data(args.n_train, args.n_val, args.height, args.width,
                            distinct=args.distinct)
    rows = [C.info("gpu: device", torch.cuda.get_device_name() if on_gpu
                   else "CPU, no CUDA: smoke sizes, no targets")]
    if args.packing:
        rows += packing_rows(args, root, on_gpu)
    else:
        data = load_dataset(root)
        arch_rows, limits = architecture_rows(args, data, device, on_gpu)
        rows += arch_rows
    rows.append(C.info("gpu: images / crops per epoch / crop / batch",
                       f"{args.width}x{args.height} / {args.n_train * args.crops_per_image}"
                       f" / {args.crop_size} / {args.batch_size}"))
    if args.course_scale:  # long: the rows so far are printed first, in case it is cut short
        print(C.format_table(rows, "gpu: trial vs bare loop on the device"), flush=True)
        rows += course_rows(args, limits, on_gpu)
    print(f"gpu benchmark: {time.perf_counter() - start:.0f} s", flush=True)
    C.emit(rows, args, "gpu: trials sharing a GPU" if args.packing
           else "gpu: trial vs bare loop on the device")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
