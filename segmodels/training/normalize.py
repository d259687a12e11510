"""ImageNet normalization, the one every model sees, on numpy images (the CPU crop path, the
report) and on tensors on any device (the device crop path, validation batches)."""

from __future__ import annotations

import functools

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_image(image: np.ndarray) -> np.ndarray:
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255
    std = np.asarray(IMAGENET_STD, dtype=np.float32) * 255
    return (image.astype(np.float32) - mean) / std


@functools.cache
def _imagenet_statistics(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std on ``device``, made once: a blocking copy to a GPU per batch would make the
    host wait for the GPU's queued work."""
    return (torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
            torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))


def normalize_tensor(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> ImageNet-normalized, on the images' device (the device
    paths: ``segmodels.training.crops_device``, ``segmodels.training.eval_batches``)."""
    mean, std = _imagenet_statistics(images.device)
    return (images - mean) / std
