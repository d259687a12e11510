"""Trial overhead: how much of a trial's time goes to training, against a bare PyTorch loop.

The same model, data, crops per epoch, crop size, batch size, DataLoader and thread count are
trained three ways, one after the other in one run:

  (a) a bare PyTorch loop (the limit): Adam steps over the trial's own CropDataset loader, then
      a validation pass over the whole validation images (forward, loss, argmax, confusion
      matrix), because the trial's ``epoch_seconds`` includes its validation too;
  (b) ``segmodels.training.train_trial`` alone, in this process (Lightning, metrics, pictures);
  (c) one Ray Tune trial through tune_app.py's code path: ``python tune_app.py`` with a
      one-point YAML grid, ``--scheduler fifo --no-report``.

Steady-state throughput is crops per second of epoch time after the first (warm-up) epoch:
(a) its own epoch timer, (b)/(c) the ``epoch_seconds`` the trial reports. The "incl. per-epoch
reporting" figures use the wall time between two reports instead (what the trial's
``time_this_iter_s`` shows in Tune): it adds what happens between epochs (metrics report, the
checkpoint written and persisted every epoch). The runs alternate a, b, a, c, a: (b) and (c) are
each compared with the mean of the bare runs just before and after them, which cancels a
steady drift of a shared machine; the spread of the three bare runs is printed too.

On a shared machine wall times swing with other jobs (the bare runs' spread is printed), so
the same ratios are also given in images per CPU-second (this process, or the trial's process
sampled every 0.2 s, children included): CPU time does not count the time other jobs hold the
cores, but neither does it count waits (file writes, Ray handing results over).

The start-up cost of (c) is from the CLI's start to its first training step (the epoch-1
picture the trial logs to TensorBoard, minus the epoch's ``epoch_seconds``).

    python bench/trial_overhead.py                  # course UNet, 128 crops, batch 8
    python bench/trial_overhead.py --threads 2
    python bench/trial_overhead.py --smoke
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import _common as C

# Smallest sizes whose epochs outlast a few sampling intervals (else CPU-share figures are NaN).
# At smoke size (c) also starts its Ray without the dashboard (a full run: the CLI's default).
SMOKE = {"epochs": 6, "n_train": 8, "n_test": 1, "height": 96, "width": 128, "crop_size": 64,
         "batch_size": 2, "model_kwargs": '{"min_channels": 4, "max_channels": 16}',
         "inference_repeats": 1, "inference_size": "64x64"}


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--model", default="unet")
    p.add_argument("--backbone", default=None)
    p.add_argument("--aspp", action="store_true", default=None)
    p.add_argument("--model-kwargs", default="{}", help="JSON, e.g. UNet channel widths")
    p.add_argument("--augment", action="store_true", help="augmented crops (default: crop only)")
    p.add_argument("--epochs", type=int, default=3, help="the first one is warm-up")
    p.add_argument("--n-train", type=int, default=16, help="training images = crops per epoch")
    p.add_argument("--n-test", type=int, default=2, help="validation images")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None,
                   help="CPUs of the trial = torch threads (default: what a trial of the "
                        "homework grid gets on this machine)")
    p.add_argument("--inference-repeats", type=int, default=None,
                   help="the trial's inference timing (default: the product's)")
    p.add_argument("--inference-size", default=None, help="HxW (default: the product's 750x1000)")
    p.add_argument("--try-fix", action="store_true",
                   help="also run (b) without the per-trial CPU inference timing")
    return p


def trial_config(args) -> dict:
    config = {"model": args.model, "augment": args.augment, "epochs": args.epochs,
              "crop_size": args.crop_size, "batch_size": args.batch_size,
              "model_kwargs": json.loads(args.model_kwargs)}
    if args.model != "unet":
        config.update(backbone=args.backbone, aspp=args.aspp)
    if args.inference_repeats is not None:
        config["inference_repeats"] = args.inference_repeats
    if args.inference_size:
        h, w = (int(v) for v in args.inference_size.lower().split("x"))
        config.update(inference_height=h, inference_width=w)
    return config


def bare_loop(config: dict, data, threads: int) -> list[tuple[float, float, float]]:
    """(a): (train seconds, validation seconds, CPU seconds) per epoch, with the trial's data
    path."""
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from segmodels.classes import IGNORE_INDEX
    from segmodels.models import create_model
    from segmodels.training import CropDataset, TrialConfig, loader_settings, normalize_image

    cfg = TrialConfig.from_dict(config)
    settings = loader_settings(cfg, threads, "cpu")
    torch.set_num_threads(settings["threads"])
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **{**cfg.model_args(), "pretrained": None})
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    loader = DataLoader(CropDataset(data.train.images, data.train.masks, cfg.crop_size,
                                    cfg.augment, cfg.crops_per_image),
                        batch_size=cfg.batch_size, shuffle=True,
                        num_workers=settings["num_workers"],
                        persistent_workers=settings["num_workers"] > 0)
    val = list(zip(data.val.images, data.val.masks))  # whole images, batch 1, as the course
    k = len(data.class_names)
    times = []
    for _ in range(cfg.epochs):
        start, cpu = time.perf_counter(), C.cpu_seconds()
        model.train()
        for images, masks in loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images), masks).backward()
            optimizer.step()
        middle = time.perf_counter()
        model.eval()
        cm = torch.zeros(k * k, dtype=torch.int64)
        with torch.inference_mode():
            for array, labels in val:
                image = torch.from_numpy(normalize_image(array).transpose(2, 0, 1).copy())
                mask = torch.from_numpy(labels.astype(np.int64))
                logits = model(image[None])
                loss_fn(logits, mask[None])
                keep = mask.flatten() != IGNORE_INDEX
                cm += torch.bincount(mask.flatten()[keep] * k + logits.argmax(1).flatten()[keep],
                                     minlength=k * k)
        times.append((middle - start, time.perf_counter() - middle, C.cpu_seconds() - cpu))
    return times


class TimingReporter:
    """(b)'s reporter: remembers when each epoch was reported and its metrics, nothing else."""

    def __init__(self):
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.rows: list[dict] = []

    def report(self, metrics, checkpoint) -> None:
        self.times.append(time.perf_counter())
        self.cpu.append(C.cpu_seconds())
        self.rows.append(metrics)


def run_b(config: dict, data, threads: int, log_dir: Path, skip_inference: bool = False):
    from segmodels.training import trial

    reporter = TimingReporter()
    timer = trial.time_inference
    if skip_inference:  # --try-fix: what the trial would save without its own CPU timing
        trial.time_inference = lambda *a, **kw: float("nan")
    start = time.perf_counter()
    try:
        trial.train_trial(config, data, reporter=reporter, cpus=threads, log_dir=str(log_dir))
    finally:
        trial.time_inference = timer
    return start, reporter


class TrialCpu:
    """(c)'s CPU clock: (time.time(), CPU seconds of the trial process and its children)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self.threads: list[tuple[float, dict[int, float]]] = []  # the trial process's threads

    def __call__(self) -> None:
        for proc in C.descendants():
            if C.is_trial_process(proc):
                cpu = C.cpu_seconds(proc.pid)
                try:
                    threads = {t.id: t.user_time + t.system_time for t in proc.threads()}
                except Exception:  # noqa: BLE001 - the trial ended
                    continue
                if cpu == cpu:
                    now = time.time()
                    self.samples.append((now, cpu))
                    self.threads.append((now, threads))

    def other_threads_share(self, start: float, end: float) -> float:
        """Share of the trial process's CPU between two wall times that was not spent by its
        busiest thread (the one that trains): Ray's and Tune's own threads."""
        inside = [(t, th) for t, th in self.threads if start <= t <= end]
        if len(inside) < 2:
            return float("nan")
        (_, a), (_, b) = inside[0], inside[-1]
        work = [cpu - a.get(tid, 0.0) for tid, cpu in b.items()]
        return 1 - max(work) / sum(work) if sum(work) > 0 else float("nan")

    def at(self, t: float) -> float:
        """CPU seconds at wall time t, interpolated between samples."""
        import numpy as np

        times, cpus = zip(*self.samples) if self.samples else ((), ())
        if not times or not times[0] <= t <= times[-1]:
            return float("nan")
        return float(np.interp(t, times, cpus))


def run_c(args, config: dict, data_root: Path, work: Path):
    axes = {k: [config[k]] for k in ("model", "backbone", "aspp", "augment") if k in config}
    grid = C.write_grid(work, "overhead", axes,
                        {k: v for k, v in config.items() if k not in axes})
    clock = TrialCpu()
    with C.Sampler(clock, interval=0.2):
        run = C.run_cli(["--grid", grid, "--data", str(data_root), "--scheduler", "fifo",
                         "--no-report", "--cpus-per-trial", str(args.threads),
                         "--num-cpus", str(args.threads), "--storage", str(work / "runs"),
                         "--overwrite", *(["--no-dashboard"] if args.smoke else [])],
                        log=work / "tune_app.log")
    exp = work / "runs" / "overhead"
    (trial_name, rows), = C.read_trials(exp).items()
    return run, rows, exp / trial_name, clock


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    from segmodels.data import load_dataset

    args.threads = args.threads or C.homework_cpus_per_trial()
    config = trial_config(args)
    root = C.synthetic_data(args.n_train, args.n_test, args.height, args.width)
    data = load_dataset(root)
    crops = len(data.train)  # crops_per_image = 1: one crop of every training image per epoch
    bare = []
    with C.workdir(args, "trial_overhead") as work:
        print("(a) bare loop ...", flush=True)
        bare.append(bare_loop(config, data, args.threads))
        print("(b) train_trial ...", flush=True)
        b_start, b = run_b(config, data, args.threads, work / "b")
        print("(a) bare loop ...", flush=True)
        bare.append(bare_loop(config, data, args.threads))
        print("(c) tune_app.py, one Ray Tune trial ...", flush=True)
        c_run, c_rows, c_dir, c_clock = run_c(args, config, root, work)
        tb = C.tensorboard_epoch_times(c_dir)
        print("(a) bare loop ...", flush=True)
        bare.append(bare_loop(config, data, args.threads))
        if args.try_fix:
            print("(b) again, without the trial's CPU inference timing (--try-fix) ...")
            fix_start, fix = run_b(config, data, args.threads, work / "b_fix", True)

    steady = slice(1, None)  # after the warm-up epoch
    a_epoch = [C.median([t + v for t, v, _ in a[steady]]) for a in bare]
    a_for_b, a_for_c = C.mean(a_epoch[:2]), C.mean(a_epoch[1:])
    a_cpu = C.median([cpu for a in bare for _, _, cpu in a[steady]])
    a_val_share = C.mean([v / (t + v) for a in bare for t, v, _ in a[steady]])
    b_seconds = C.mean([r["epoch_seconds"] for r in b.rows[steady]])
    b_wall = C.mean([t1 - t0 for t0, t1 in zip(b.times, b.times[1:])])
    b_cpu = C.mean([c1 - c0 for c0, c1 in zip(b.cpu, b.cpu[1:])])
    c_seconds = C.mean([r["epoch_seconds"] for r in c_rows[steady]])
    c_wall = C.mean([r["time_this_iter_s"] for r in c_rows[steady]])
    ends = [c_clock.at(tb.get(r["epoch"], float("nan"))) for r in c_rows]
    c_cpu = C.mean([c1 - c0 for c0, c1 in zip(ends, ends[1:])  # epochs the sampler saw whole
                    if not math.isnan(c1 - c0)])

    first = c_rows[0]
    c_first_step = tb[1] - first["epoch_seconds"] if 1 in tb else float("nan")
    c_sweep = c_run.first_line_time("Sweep '") or float("nan")
    c_trial_start = (tb.get(1, float("nan")) - first["time_total_s"])
    b_first_step = b.times[0] - b_start - b.rows[0]["epoch_seconds"]

    rows = [
        C.check("overhead: (b)/(a) images/s, train_trial vs bare loop",
                a_for_b / b_seconds, ">=", 0.95),
        C.check("overhead: (c)/(a) images/s, Tune trial vs bare loop",
                a_for_c / c_seconds, ">=", 0.95),
        C.check("overhead: (b)/(a) images/s incl. per-epoch reporting",
                a_for_b / b_wall, ">=", 0.95),
        C.check("overhead: (c)/(a) images/s incl. per-epoch checkpoint+report",
                a_for_c / c_wall, ">=", 0.95),
        C.check("overhead: (b)/(a) images per CPU-second incl. per-epoch reporting",
                a_cpu / b_cpu, ">=", 0.95),
        C.check("overhead: (c)/(a) images per CPU-second incl. checkpoint+report",
                a_cpu / c_cpu, ">=", 0.95),
        C.info("overhead: (c) time between epochs outside epoch_seconds / epoch",
               C.mean([(r["time_this_iter_s"] - r["epoch_seconds"]) / r["time_this_iter_s"]
                       for r in c_rows[steady]])),
        C.info("overhead: (c) CPU share of threads other than the training thread",
               c_clock.other_threads_share(tb.get(1, float("nan")),
                                           tb.get(len(c_rows), float("nan")))),
        C.info("overhead: (a) bare loop images/s (train + validation)",
               crops / C.mean(a_epoch), "{:.2f}"),
        C.info("overhead: (a) validation share of the bare epoch", a_val_share),
        C.info("overhead: (a) drift, slowest/fastest of the 3 bare runs",
               max(a_epoch) / min(a_epoch)),
        C.info("overhead: (c) start-up, CLI start to first training step [s]",
               c_first_step - c_run.start, "{:.1f}"),
        C.info("overhead: (c) start-up, CLI start to sweep start [s]",
               c_sweep - c_run.start, "{:.1f}"),
        C.info("overhead: (c) start-up, sweep start to trial start [s] (approx.)",
               c_trial_start - c_sweep, "{:.1f}"),
        C.info("overhead: (c) start-up, trial start to first step [s] (approx.)",
               first["time_total_s"] - first["epoch_seconds"], "{:.1f}"),
        C.info("overhead: (b) start-up, train_trial call to first step [s]",
               b_first_step, "{:.1f}"),
        C.info("overhead: (c) CLI wall time [s]", c_run.seconds, "{:.1f}"),
    ]
    if args.try_fix:
        rows.append(C.info("overhead: (b) start-up without in-trial inference timing [s] "
                           "(try-fix)", fix.times[0] - fix_start - fix.rows[0]["epoch_seconds"],
                           "{:.1f}"))
    C.emit(rows, args, "trial_overhead: bare loop (a) vs train_trial (b) vs Tune trial (c)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
