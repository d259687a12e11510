"""One trial of a sweep: ``train_trial(config, data, reporter)``.

Written for Ray Tune but free of it: ``config`` is a plain dict, ``data`` the decoded dataset,
and ``reporter`` receives each epoch's metrics and checkpoint (Tune's reporter lives in
``sweeps``; ``LocalReporter`` writes to a folder). Fixed facts about the model (size, parameter
count, inference time) are measured before training and sent with every epoch, so a trial that
ASHA stops early still has them.

Where the data is prepared depends on where the trial trains: on CUDA, crops, augmentation and
validation images are made on the GPU (``crops_device``, ``eval_batches``); on CPU,
albumentations in DataLoader workers (``crops_cpu``), the faster path there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from segmodels.data import SegmentationData
from segmodels.models import model_size_mb, parameter_count, time_inference
from segmodels.training.batches import EpochBatches, training_batch_size
from segmodels.training.checkpoint import (
    IMAGE_CONFUSIONS,
    IMAGE_CONFUSIONS_FILE,
    save_checkpoint,
    save_image_confusions,
)
from segmodels.training.config import TrialConfig
from segmodels.training.crops_cpu import CropDataset, seed_crop_worker
from segmodels.training.crops_device import DeviceCrops
from segmodels.training.device_data import cap_process_memory
from segmodels.training.eval_batches import ValidationBatches, pixels_per_batch
from segmodels.training.module import SegmentationModule
from segmodels.training.precision import resolve_memory_format, resolve_precision


class Reporter(Protocol):
    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None) -> None: ...


class LocalReporter:
    """Keeps ``last.pt``, ``best.pt`` and ``history.jsonl`` in a folder (runs without Ray)."""

    def __init__(self, out_dir: str | Path, verbose: bool = True):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.history: list[dict[str, Any]] = []
        self.verbose = verbose

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
        self.history.append(metrics)
        with open(self.out_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if checkpoint is not None:
            evidence = checkpoint.pop(IMAGE_CONFUSIONS, None)
            save_checkpoint(self.out_dir / "last.pt", checkpoint)
            if metrics["epoch"] == metrics["best_epoch"]:
                save_checkpoint(self.out_dir / "best.pt", checkpoint)
                if evidence is not None:
                    save_image_confusions(self.out_dir / IMAGE_CONFUSIONS_FILE, evidence)
        if self.verbose:
            print(
                f"epoch {metrics['epoch']:3d}  train_loss {metrics['train_loss']:.4f}  "
                f"val_loss {metrics['val_loss']:.4f}  val_miou {metrics['val_miou']:.4f}  "
                f"val_acc {metrics['val_accuracy']:.4f}  ({metrics['train_minutes']:.2f} min)",
                flush=True,
            )


def loader_settings(cfg: TrialConfig, cpus: int, accelerator: str) -> dict[str, Any]:
    """Threads and loader workers follow the trial's CPUs, so concurrent trials never
    oversubscribe the machine."""
    threads = cfg.num_threads or max(1, cpus)
    workers = (
        cfg.num_workers if cfg.num_workers is not None else (0 if cpus <= 2 else min(4, cpus // 2))
    )
    return {"threads": threads, "num_workers": workers, "pin_memory": accelerator == "gpu"}


class _EpochReporter(pl.Callback):
    """Turns each finished epoch (train + validation) into one report and one checkpoint."""

    def __init__(
        self,
        module: SegmentationModule,
        reporter: Reporter | None,
        static: dict,
        resume: dict[str, Any] | None,
    ):
        self.module, self.reporter, self.static = module, reporter, static
        self.start_epoch = resume["epoch"] if resume else 0
        self.train_seconds = resume["train_seconds"] if resume else 0.0
        self.best = resume["best"] if resume else {"val_miou": -1.0, "epoch": 0}
        self.history: list[dict[str, Any]] = list(resume["history"]) if resume else []
        self._tick = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._tick = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch_seconds = time.perf_counter() - self._tick
        self.train_seconds += epoch_seconds
        epoch = self.start_epoch + trainer.current_epoch + 1
        row = self.module.epoch_metrics()
        if not (np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])):
            raise FloatingPointError(
                f"training diverged at epoch {epoch}: train loss {row['train_loss']}, val loss "
                f"{row['val_loss']}; lower the learning rate (lr={self.module.cfg.lr})"
            )
        if row["val_miou"] >= self.best["val_miou"]:  # ties: the later epoch, as Ray keeps
            self.best = {"val_miou": row["val_miou"], "epoch": epoch}
        row.update(
            epoch=epoch,
            epochs_planned=self.module.cfg.epochs,  # a stopped trial's time is projected to it
            epoch_seconds=epoch_seconds,
            val_seconds=self.module.val_seconds,  # the validation part of epoch_seconds
            train_minutes=self.train_seconds / 60,
            best_val_miou=self.best["val_miou"],
            best_epoch=self.best["epoch"],
            **self.static,
        )
        memory = peak_gpu_memory_mb(pl_module.device)
        if memory is not None:
            row["gpu_memory_mb"] = memory
        self.history.append({k: v for k, v in row.items() if k != "val_confusion"})
        if self.module.pictures and trainer.logger is not None:
            for i, picture in enumerate(self.module.pictures):
                trainer.logger.experiment.add_image(f"val/{i}", picture, epoch, dataformats="HWC")
        state = None
        if self.reporter is not None:
            state = {
                "config": self.module.cfg.to_dict(),
                "num_classes": self.module.num_classes,
                "epoch": epoch,
                "model": self.module.model.state_dict(),
                "optimizer": trainer.optimizers[0].state_dict(),
                "lr_scheduler": trainer.lr_scheduler_configs[0].scheduler.state_dict(),
                "history": self.history,
                "best": self.best,
                "train_seconds": self.train_seconds,
                "val_miou": row["val_miou"],
                # not saved in the checkpoint: reporters keep it beside it (IMAGE_CONFUSIONS_FILE)
                IMAGE_CONFUSIONS: self.module.image_confusions(),
            }
            self.reporter.report(row, state)


def peak_gpu_memory_mb(device: torch.device) -> float | None:
    """The most GPU memory this trial's process has held so far (the caching allocator's
    reservation, MB): what trials packed onto one GPU take from each other, and what a share
    must fit. None on the CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_reserved(device) / 1e6


def _quiet_lightning() -> None:
    """Lightning's per-run banners and hints would repeat once per trial in a sweep's log."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*smaller than the logging interval.*",
                    ".*LeafSpec.*", ".*GPU available but not used.*"):
        warnings.filterwarnings("ignore", pattern)


def _static_facts(
    module: SegmentationModule, cfg: TrialConfig, device: str, time_cpu_inference: bool
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "params": parameter_count(module.model),
        "size_mb": model_size_mb(module.model),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
    size = {
        "height": cfg.inference_height,
        "width": cfg.inference_width,
        "repeats": cfg.inference_repeats,
    }
    facts["inference_ms_cpu"] = (
        time_inference(module.model, "cpu", **size) if time_cpu_inference else float("nan")
    )
    facts["inference_ms_gpu"] = (
        time_inference(module.model, "cuda", **size) if device == "gpu" else float("nan")
    )
    module.model.to("cpu")
    return facts


def _train_batches(cfg: TrialConfig, data: SegmentationData, settings: dict[str, Any],
                   device: torch.device | None, seed: int):
    """One epoch of training batches per iteration: made on ``device`` when given, else by
    albumentations in DataLoader workers."""
    batch_size, note = training_batch_size(len(data.train), cfg)
    if note:
        warnings.warn(note, stacklevel=3)
    if device is not None:
        return DeviceCrops(data.train.images, data.train.masks, crop_size=cfg.crop_size,
                           augment=cfg.augment, crops_per_image=cfg.crops_per_image,
                           batch_size=batch_size, device=device, seed=seed)
    return DataLoader(
        CropDataset(data.train.images, data.train.masks, cfg.crop_size, cfg.augment,
                    cfg.crops_per_image, seed=seed),
        batch_sampler=EpochBatches(len(data.train) * cfg.crops_per_image, batch_size, seed),
        worker_init_fn=seed_crop_worker,
        num_workers=settings["num_workers"],
        pin_memory=settings["pin_memory"],
        persistent_workers=settings["num_workers"] > 0,
    )


def train_trial(
    config: dict[str, Any],
    data: SegmentationData,
    *,
    reporter: Reporter | None = None,
    resume: dict[str, Any] | None = None,
    cpus: int | None = None,
    log_dir: str | None = None,
    extra_facts: dict[str, Any] | None = None,
    time_cpu_inference: bool = True,
    data_on_device: bool | None = None,
    gpu_share: float | None = None,
) -> list[dict[str, Any]]:
    """Train one configuration; returns its per-epoch history.

    ``resume`` is a checkpoint dict from an earlier run of the same trial: training continues
    at the next epoch with the model, optimizer and scheduler as they were.
    ``time_cpu_inference=False`` records NaN instead of timing 1000x750 frames on the CPU: a
    sweep times each architecture alone afterwards, and in a trial the timing cost tens of
    seconds of start-up while other trials disturbed the figure.
    ``data_on_device`` chooses the training data path: None (default) the device path when
    the trial trains on CUDA; True or False forces it (tests and benchmarks compare them).
    ``gpu_share`` below 1 (a GPU shared with other trials) caps this process's GPU memory to
    that share of the GPU, on CUDA only, so an out-of-memory fails the trial that caused it.
    """
    cfg = TrialConfig.from_dict(config)
    training_batch_size(len(data.train), cfg)  # a single crop is refused before any work
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    if accelerator == "gpu" and gpu_share is not None and 0 < gpu_share < 1:
        cap_process_memory(gpu_share)  # before anything is allocated
    settings = loader_settings(cfg, cpus or os.cpu_count() or 1, accelerator)
    torch.set_num_threads(settings["threads"])
    start_epoch = resume["epoch"] if resume else 0
    pl.seed_everything(cfg.seed + start_epoch, workers=True, verbose=False)

    module = SegmentationModule(cfg, class_names=data.class_names)
    module.memory_format = resolve_memory_format(cfg.memory_format, accelerator)
    module.model.to(memory_format=module.memory_format)
    if resume is not None:
        module.model.load_state_dict(resume["model"])
        module.resume_state = resume
    remaining = cfg.epochs - start_epoch
    if remaining <= 0:  # finished before an interruption: nothing to train or time again
        return list(resume["history"])
    static = {**_static_facts(module, cfg, accelerator, time_cpu_inference),
              **(extra_facts or {})}
    callback = _EpochReporter(module, reporter, static, resume)

    on_device = accelerator == "gpu" if data_on_device is None else data_on_device
    train_batches = _train_batches(cfg, data, settings, device if on_device else None,
                                   seed=cfg.seed + start_epoch)
    val_batches = ValidationBatches(
        data.val.images, data.val.masks, device,
        pixels_per_batch(cfg.batch_size, cfg.crop_size, accelerator),
    )
    module.val_order = val_batches.order
    logger: Any = False
    if log_dir is not None and cfg.log_images > 0:
        from pytorch_lightning.loggers import TensorBoardLogger

        logger = TensorBoardLogger(log_dir, name="tensorboard", version="")
    _quiet_lightning()
    trainer = pl.Trainer(
        max_epochs=remaining,
        accelerator=accelerator,
        devices=1,
        precision=resolve_precision(cfg.precision, accelerator, cfg.architecture),
        benchmark=accelerator == "gpu",  # cuDNN autotuning: crops and frames keep one size
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10**9,
        deterministic=False,
    )
    trainer.fit(module, train_batches, val_batches)
    return callback.history
