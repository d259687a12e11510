"""Data path: does the trial's loader outrun the model, and is every file decoded once?

1. For every point of the homework grid, the trial's own loader (``CropDataset`` in a
   ``DataLoader`` with ``loader_settings`` for the trial's CPUs: its worker count and torch
   threads) is timed delivering augmented crops, and the model is timed consuming crops (Adam
   steps on ready batches, same threads). The loader is timed before and after the model and
   averaged. Target: the loader delivers >= 3x what the model consumes. The default CPUs per
   trial are what the product gives a homework sweep on this machine (an even share).
2. A sweep of several trials and epochs runs through tune_app.py's code path, report included,
   counting the files the driver's loads decode (``_common.counting_decodes``); during
   ``Tuner.fit`` the dataset folder is renamed away, so a trial that opened a file would fail
   the sweep. Target: exactly one decode per file.
3. The CPU trial before and after the device data path (crops, augmentation and batched
   validation on the GPU; CPU trials keep albumentations and one image per
   validation pass): ``train_trial`` of ``segmodels`` exported from ``--before`` (git) and of
   the working tree, each in its own process, alternating B A A B (``--trial-order``), on the
   same data, model (augmented UNet), crops, batch and threads. Crops per second of
   ``epoch_seconds`` (training + validation) after the first epoch, medians per side. Target:
   after / before >= 0.97.

    python bench/data.py                          # 1000x750 images, 128-px crops, batch 8
    python bench/data.py --crop-size 256 --batch-size 16
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

import _common as C

SMOKE = {"height": 96, "width": 128, "n_train": 4, "crop_size": 32, "batch_size": 2,
         "loader_batches": 2, "model_steps": 1, "points": 2, "sweep_trials": 1,
         "sweep_epochs": 1, "trial_epochs": 2, "trial_rounds": 1, "trial_order": "BA",
         "trial_channels": "4,16", "trial_size": "96x128", "trial_crops": 4}
# (smoke: one run per side and a narrow UNet: the CPU trials' processes cost the most there)
BEFORE = "6922aab"  # the last commit before the device data path


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--height", type=int, default=750, help="training image size")
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--cpus", type=int, default=None,
                   help="CPUs per trial (default: the product's share for the homework grid)")
    p.add_argument("--loader-batches", type=int, default=6)
    p.add_argument("--model-steps", type=int, default=2, help="timed steps after a warm-up")
    p.add_argument("--points", type=int, default=None, help="first N homework points only")
    p.add_argument("--sweep-trials", type=int, default=3)
    p.add_argument("--sweep-epochs", type=int, default=2)
    p.add_argument("--before", default=BEFORE, help="git revision of the 'before' CPU trial")
    p.add_argument("--trial-epochs", type=int, default=3, help="the first one is warm-up")
    p.add_argument("--trial-rounds", type=int, default=2, help="--trial-order per round")
    p.add_argument("--trial-order", default="BAAB", help="the runs of a round: B before, A after")
    p.add_argument("--trial-channels", default=None,
                   help="the CPU trial's UNet min,max channels (default: the course UNet's)")
    p.add_argument("--trial-size", default="240x320", help="HxW of the trial's images")
    p.add_argument("--trial-crops", type=int, default=32, help="training crops per epoch")
    return p


def loader_rate(cfg, data, cpus: int, batches: int) -> float:
    """Crops/s the trial's DataLoader delivers (after its first batch)."""
    import torch
    from torch.utils.data import DataLoader

    from segmodels.training import CropDataset, loader_settings

    settings = loader_settings(cfg, cpus, "cpu")
    torch.set_num_threads(settings["threads"])
    dataset = CropDataset(data.train.images, data.train.masks, cfg.crop_size, cfg.augment,
                          crops_per_image=max(1, -(-(batches + 1) * cfg.batch_size
                                                   // len(data.train))))
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True,
                        num_workers=settings["num_workers"])
    it = iter(loader)
    next(it)
    with C.Timer() as t:
        for _ in range(batches):
            next(it)
    return batches * cfg.batch_size / t.seconds


def model_rate(cfg, batch, cpus: int, steps: int) -> float:
    """Crops/s the model consumes in training steps (forward, loss, backward, Adam)."""
    import torch
    from torch import nn

    from segmodels.classes import IGNORE_INDEX
    from segmodels.models import create_model
    from segmodels.training import loader_settings

    torch.set_num_threads(loader_settings(cfg, cpus, "cpu")["threads"])
    model = create_model(cfg.model, **{**cfg.model_args(), "pretrained": None}).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    images, masks = batch

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), masks).backward()
        optimizer.step()

    step()  # warm-up
    with C.Timer() as t:
        for _ in range(steps):
            step()
    return steps * len(images) / t.seconds


def throughput_rows(args) -> list[C.Row]:
    from segmodels.data import load_dataset
    from segmodels.training import CropDataset, TrialConfig
    from sweeps.grids import load_grid

    grid = load_grid("homework").by_label()
    points = list(grid.items())[: args.points or None]
    cpus = args.cpus or C.homework_cpus_per_trial()
    data = load_dataset(C.synthetic_data(args.n_train, 1, args.height, args.width))
    rows = []
    for label, point in points:
        cfg = TrialConfig.from_dict({**point, "crop_size": args.crop_size,
                                     "batch_size": args.batch_size})
        print(f"{label}: loader and model ...", flush=True)
        before = loader_rate(cfg, data, cpus, args.loader_batches)
        crops = CropDataset(data.train.images, data.train.masks, cfg.crop_size, cfg.augment)
        from torch.utils.data import default_collate

        batch = default_collate([crops[i % len(crops)] for i in range(cfg.batch_size)])
        consumed = model_rate(cfg, batch, cpus, args.model_steps)
        delivered = (before + loader_rate(cfg, data, cpus, args.loader_batches)) / 2
        rows.append(C.check(f"data: loader/model crops/s, {label}", delivered / consumed, ">=",
                            3.0, "{:.2f}"))
        rows.append(C.info(f"data: crops/s loader / model, {label}",
                           f"{delivered:.1f} / {consumed:.2f}"))
    rows.append(C.info("data: CPUs per trial (threads, loader workers from loader_settings)",
                       cpus, "{:.0f}"))
    rows.append(C.info("data: image size / crop / batch",
                       f"{args.width}x{args.height} / {args.crop_size} / {args.batch_size}"))
    return rows


def decode_rows(args, work) -> list[C.Row]:
    with C.counting_decodes() as decoded:
        return _decode_rows(args, work, decoded)


def _decode_rows(args, work, decoded: list[int]) -> list[C.Row]:
    import tune_app

    root = work / "dataset"
    shutil.copytree(C.synthetic_data(6, 2, 96, 128), root)
    n_files = sum(1 for _ in root.glob("*/*/*.*"))
    away = work / "dataset-moved-away"
    grid = C.write_grid(work, "decode", {"model": ["unet"], "augment": [True],
                                         "seed": list(range(args.sweep_trials))},
                        {"model_kwargs": {"min_channels": 4, "max_channels": 16},
                         "inference_height": 64, "inference_width": 64,
                         "inference_repeats": 1})
    counts: dict[str, int] = {"start": decoded[0]}

    @contextlib.contextmanager
    def moved_away(prepared):
        counts["prepared"] = decoded[0]
        root.rename(away)  # a trial that reads a file now fails the sweep
        try:
            yield
        finally:
            away.rename(root)

    run = C.run_sweep(["--grid", grid, "--data", str(root), "--epochs", str(args.sweep_epochs),
                       "--crop-size", "32", "--batch-size", "2", "--scheduler", "fifo",
                       "--cpus-per-trial", "1", "--num-cpus", "2", "--storage",
                       str(work / "runs"), *(["--no-dashboard"] if args.smoke else [])],
                      between=moved_away)
    counts["fit"] = decoded[0]
    with C.Timer() as report:
        # what tune_app.py does after the sweep
        tune_app.write_report(run.prepared.settings, run.prepared.data.val)
    counts["report"] = decoded[0]
    trials = run.trials()
    epochs = sum(len(r) for r in trials.values())
    return [
        C.check("data: decodes per file, sweep up to the report",
                (counts["fit"] - counts["start"]) / n_files, "==", 1.0, "{:.2f}"),
        C.check("data: decodes per file, sweep incl. its report",
                (counts["report"] - counts["start"]) / n_files, "==", 1.0, "{:.2f}"),
        C.info("data: decodes in trial processes (folder moved away during fit)",
               f"0 ({len(trials)} trials, {epochs} epochs, no error)"),
        C.info("data: report build time [s]", report.seconds, "{:.1f}"),
    ]


# One trial in a fresh process, with the segmodels found first on sys.path: its epochs'
# (epoch_seconds, CPU seconds of the process when reported).
_TRIAL = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from segmodels import load_dataset
try:
    from segmodels.training import train_trial
except ImportError:  # a revision from before segmodels had wings
    from segmodels.trial import train_trial

class Reporter:
    rows = []

    def report(self, metrics, checkpoint):
        self.rows.append((metrics["epoch_seconds"], time.process_time()))

config = json.loads(sys.argv[3])
train_trial(config, load_dataset(sys.argv[2]), reporter=Reporter(), cpus=int(sys.argv[4]),
            time_cpu_inference=False)
print("EPOCHS " + json.dumps(Reporter.rows))
"""


def _export(rev: str, work) -> str:
    """``segmodels`` of git revision ``rev``, unpacked into ``work``."""
    archive = subprocess.run(["git", "-C", str(C.ROOT), "archive", rev, "segmodels"],
                             capture_output=True, check=True).stdout
    dest = work / f"before-{rev}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return str(dest)


def _trial_epochs(source: str, root, config: dict, cpus: int, work) -> list[tuple[float, float]]:
    proc = subprocess.run([sys.executable, "-c", _TRIAL, source, str(root), json.dumps(config),
                           str(cpus)], cwd=work, capture_output=True, text=True, timeout=3600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("EPOCHS ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"trial from {source} failed:\n{proc.stderr[-3000:]}")
    return [tuple(row) for row in json.loads(line[len("EPOCHS "):])]


def before_after_rows(args, work) -> list[C.Row]:
    """The CPU trial's crops/s with ``segmodels`` of ``--before`` and of the working tree."""
    height, width = (int(v) for v in args.trial_size.lower().split("x"))
    root = C.synthetic_data(args.trial_crops, 2, height, width)
    config = {"model": "unet", "augment": True, "epochs": args.trial_epochs,
              "crop_size": args.crop_size, "batch_size": args.batch_size,
              "inference_repeats": 1, "log_images": 0}
    if args.trial_channels:
        lo, hi = (int(v) for v in args.trial_channels.split(","))
        config["model_kwargs"] = {"min_channels": lo, "max_channels": hi}
    cpus = args.cpus or C.homework_cpus_per_trial()
    sources = {"before": _export(args.before, work), "after": str(C.ROOT)}
    rates: dict[str, list[float]] = {"before": [], "after": []}
    per_cpu: dict[str, list[float]] = {"before": [], "after": []}
    order = [{"B": "before", "A": "after"}[c] for c in args.trial_order.upper()]
    if set(order) != {"before", "after"}:
        raise SystemExit(f"--trial-order {args.trial_order}: B and A, each at least once")
    for side in order * args.trial_rounds:
        print(f"CPU trial, {side} ...", flush=True)
        epochs = _trial_epochs(sources[side], root, config, cpus, work)
        steady = range(1, len(epochs))
        rates[side].append(args.trial_crops / C.mean([epochs[i][0] for i in steady]))
        per_cpu[side].append(args.trial_crops * len(steady) / (epochs[-1][1] - epochs[0][1]))
    before, after = (statistics.median(rates[s]) for s in ("before", "after"))
    cpu_before, cpu_after = (statistics.median(per_cpu[s]) for s in ("before", "after"))
    return [
        C.check("data: CPU trial crops/s, after / before the device data path",
                after / before, ">=", 0.97),
        C.info("data: CPU trial crops/s, before / after", f"{before:.2f} / {after:.2f}"),
        C.info("data: CPU trial crops/s of each run, before; after",
               "; ".join(", ".join(f"{r:.2f}" for r in rates[s]) for s in rates)),
        C.info("data: CPU trial crops per CPU-second, after / before", cpu_after / cpu_before),
        C.info("data: CPU trial: before = segmodels at / threads / crops per epoch",
               f"{args.before} / {cpus} / {args.trial_crops}"),
    ]


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    start = time.perf_counter()
    rows = throughput_rows(args)
    with C.workdir(args, "data") as work:
        rows += before_after_rows(args, work)
        rows += decode_rows(args, work)
    print(f"data benchmark: {time.perf_counter() - start:.0f} s", flush=True)
    C.emit(rows, args, "data: loader vs model, decodes per file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
