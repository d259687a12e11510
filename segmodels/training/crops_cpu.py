"""Albumentations pipelines and the torch datasets that apply them to decoded arrays.

This is the CPU path of training crops (DataLoader workers), the faster one on a CPU; a trial
that trains on CUDA makes its crops on the GPU instead (``segmodels.training.crops_device``), with
the same augmentations.

Image and mask go through the same geometric transform. Pixels that come from padding or
rotation borders get ``IGNORE_INDEX`` in the mask, so the loss never learns a fake class there.
"""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segmodels.classes import IGNORE_INDEX
from segmodels.training.normalize import IMAGENET_MEAN, IMAGENET_STD


def _pad_and_crop(crop_size: int) -> list[A.BasicTransform]:
    return [
        A.PadIfNeeded(
            crop_size, crop_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX
        ),
        A.RandomCrop(crop_size, crop_size),
    ]


def seed_transform(transform: A.Compose, seed: int | None) -> A.Compose:
    """Albumentations draws from its own generators, which global seeds do not reach. One stream
    shared by every transform: ``Compose(seed=s)`` gives each transform its own generator with
    the same seed, so both flips (p=0.5, one draw each) would always happen together."""
    if seed is not None:
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return transform


def train_transform(crop_size: int, augment: bool, seed: int | None = None) -> A.Compose:
    """Random crop only without augmentation; the course's augmentations with it; ``seed``
    makes the crops repeat."""
    if not augment:
        return seed_transform(
            A.Compose([*_pad_and_crop(crop_size), A.Normalize(IMAGENET_MEAN, IMAGENET_STD)]),
            seed,
        )
    return seed_transform(A.Compose(
        [
            A.RandomScale(scale_limit=(-0.3, 0.3), p=1.0),
            A.Rotate(
                limit=30, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX, p=0.5
            ),
            *_pad_and_crop(crop_size),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomBrightnessContrast(0.2, 0.2, p=0.5),
            A.HueSaturationValue(10, 20, 10, p=0.5),
            A.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    ), seed)


def to_tensors(image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) float32 normalized + (H, W) uint8 -> (3, H, W) float32 + (H, W) int64."""
    return (
        torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        torch.from_numpy(mask.astype(np.int64)),
    )


class CropDataset(Dataset):
    """``crops_per_image`` random (augmented) crops of every training image per epoch.

    The arrays are read-only views shared with Ray's object store; transforms copy, never
    write in place.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        masks: list[np.ndarray],
        crop_size: int,
        augment: bool,
        crops_per_image: int = 1,
        seed: int | None = None,
    ):
        self.images, self.masks = images, masks
        self.transform = train_transform(crop_size, augment, seed)
        self.crops_per_image = crops_per_image

    def __len__(self) -> int:
        return len(self.images) * self.crops_per_image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = index % len(self.images)
        out = self.transform(image=self.images[i], mask=self.masks[i])
        return to_tensors(out["image"], out["mask"])


def seed_crop_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker copies the dataset, generator state included;
    without this every worker would draw the same crops. torch's per-worker seed derives from
    the trial's seed, so runs repeat."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, CropDataset):
        seed_transform(info.dataset.transform, info.seed % 2**32)
