"""The training wing: one trial, from a configuration and decoded data to checkpoints and rows.

- ``config``: ``TrialConfig``, the one authority on a trial's settings, and their merge.
- ``losses``, ``optim``: the registries of losses, optimizers and learning-rate schedules;
  ``loss_modules``: the torch modules that wrap a loss.
- ``precision``: what ``precision=auto`` and ``memory_format=auto`` resolve to on a device.
- ``batches``: how an epoch's crops are cut into batches (never a batch of one).
- ``crops_cpu``, ``crops_device``: the two paths of training crops and augmentation, the CPU
  one (albumentations in DataLoader workers) and the device one (kornia, batched on the GPU);
  ``normalize``: the ImageNet normalization both paths and validation apply.
- ``device_data``: where the decoded splits live while a trial trains on a GPU.
- ``eval_batches``: whole validation images, batched by size, and per-image confusions.
- ``module``: the Lightning module; ``trial``: ``train_trial``, one trial's loop and reports.
- ``checkpoint``: checkpoints that rebuild their model alone.

``module`` and ``trial`` import Lightning, ``crops_cpu`` albumentations, ``crops_device``
kornia: their names load on first use, so a program that only reads configurations, checks a
sweep or writes a report (the CLI's driver, ``analysis``) does not pay for them. The names
that need torch load on first use too: the configuration, the registries' names and the
checkpoint file names come without it (the CLI's parser, the storage contract).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segmodels.training import config
from segmodels.training.checkpoint import (
    CHECKPOINT_FILE,
    IMAGE_CONFUSIONS,
    IMAGE_CONFUSIONS_FILE,
    CheckpointError,
    checkpoint_bytes,
    load_checkpoint,
    load_image_confusions,
    model_from_checkpoint,
    save_checkpoint,
    save_image_confusions,
)
from segmodels.training.config import TrialConfig, check_value, parse_value, trial_settings
from segmodels.training.losses import (
    LOSSES,
    NEEDS_CLASS_WEIGHTS,
    build_loss,
    class_weights,
    list_losses,
)
from segmodels.training.optim import LR_SCHEDULERS, OPTIMIZERS

if TYPE_CHECKING:
    from segmodels.training import device_data, trial
    from segmodels.training.batches import EpochBatches, batch_sizes, training_batch_size
    from segmodels.training.crops_cpu import CropDataset, seed_crop_worker
    from segmodels.training.crops_device import DeviceCrops
    from segmodels.training.eval_batches import (
        ValidationBatches,
        image_confusions,
        pixels_per_batch,
    )
    from segmodels.training.module import SegmentationModule
    from segmodels.training.normalize import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        normalize_image,
        normalize_tensor,
    )
    from segmodels.training.precision import (
        FP32_ON_GPU,
        resolve_memory_format,
        resolve_precision,
    )
    from segmodels.training.trial import LocalReporter, Reporter, loader_settings, train_trial

_SUBMODULES = ("device_data", "trial")  # loaded on first use, like the names below
_LOADED_ON_USE = {
    **dict.fromkeys(("EpochBatches", "batch_sizes", "training_batch_size"),
                    "segmodels.training.batches"),
    **dict.fromkeys(("ValidationBatches", "image_confusions", "pixels_per_batch"),
                    "segmodels.training.eval_batches"),
    **dict.fromkeys(("IMAGENET_MEAN", "IMAGENET_STD", "normalize_image", "normalize_tensor"),
                    "segmodels.training.normalize"),
    **dict.fromkeys(("FP32_ON_GPU", "resolve_memory_format", "resolve_precision"),
                    "segmodels.training.precision"),
    "CropDataset": "segmodels.training.crops_cpu",
    "seed_crop_worker": "segmodels.training.crops_cpu",
    "DeviceCrops": "segmodels.training.crops_device",
    "SegmentationModule": "segmodels.training.module",
    "LocalReporter": "segmodels.training.trial",
    "Reporter": "segmodels.training.trial",
    "loader_settings": "segmodels.training.trial",
    "train_trial": "segmodels.training.trial",
}


def __getattr__(name: str) -> Any:
    """The names that import torch, Lightning, albumentations or kornia, loaded when first
    asked for."""
    if name in _SUBMODULES:
        return importlib.import_module(f"segmodels.training.{name}")
    if name in _LOADED_ON_USE:
        return getattr(importlib.import_module(_LOADED_ON_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKPOINT_FILE",
    "IMAGE_CONFUSIONS",
    "IMAGE_CONFUSIONS_FILE",
    "FP32_ON_GPU",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LOSSES",
    "LR_SCHEDULERS",
    "NEEDS_CLASS_WEIGHTS",
    "OPTIMIZERS",
    "CheckpointError",
    "CropDataset",
    "DeviceCrops",
    "EpochBatches",
    "LocalReporter",
    "Reporter",
    "SegmentationModule",
    "TrialConfig",
    "ValidationBatches",
    "batch_sizes",
    "build_loss",
    "check_value",
    "class_weights",
    "config",
    "device_data",
    "image_confusions",
    "list_losses",
    "load_checkpoint",
    "load_image_confusions",
    "loader_settings",
    "model_from_checkpoint",
    "normalize_image",
    "normalize_tensor",
    "parse_value",
    "pixels_per_batch",
    "resolve_memory_format",
    "resolve_precision",
    "checkpoint_bytes",
    "save_checkpoint",
    "save_image_confusions",
    "seed_crop_worker",
    "train_trial",
    "training_batch_size",
    "trial",
    "trial_settings",
]
