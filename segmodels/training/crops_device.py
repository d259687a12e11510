"""Training crops made on the trial's device: the course's augmentations as batched tensor ops.

The CPU path (``segmodels.training.crops_cpu``: albumentations in DataLoader workers) is faster on a
CPU; on a GPU those workers cannot keep up (~500-950 augmented crops/s with 4-15 workers
against the 1,000-2,000 crops/s an H200 trains), so a trial that trains on CUDA uses this path.

Per sample, with its own random parameters (kornia draws per sample; ``same_on_batch`` off):

1. scale s in [0.7, 1.3] (kornia's draw) and a crop position in the source image, chosen as
   albumentations' RandomScale + PadIfNeeded + RandomCrop would: anywhere the scaled crop fits,
   centred when the scaled image is smaller than the crop;
2. a window around that crop, large enough for any scale and rotation
   (``window_size``), cut from the device-resident uint8 image; outside the image the window
   is black and its mask ``IGNORE_INDEX``;
3. kornia ``AugmentationSequential`` over image and mask together (``data_keys``): scale,
   rotation by +-30 degrees with p 0.5, centre crop, horizontal and vertical flips (p 0.5),
   brightness/contrast (p 0.5) and hue/saturation/value (p 0.5). Masks are resampled nearest
   and padded with ``IGNORE_INDEX`` (``extra_args``); the rotation is a ``RandomAffine``,
   because ``RandomRotation`` pads masks with 0, a real class. (The window is large enough
   that kornia's padding never reaches the crop; these settings keep that so if it changes.)

Unlike albumentations, which rotates the whole scaled image about its centre, the rotation
turns the window about the crop's centre: its corners show real neighbouring pixels, and
ignored borders appear only where the rotated crop leaves the image. Colour uses kornia's
(torchvision's) formulas: brightness, contrast and saturation factors in [0.8, 1.2], hue +-20
degrees (albumentations' +-10 on OpenCV's 180-step hue) and value +-4%.

The random stream is the trial's: seeded once, kept apart from torch's global generator (which
kornia draws from) so that the same seed repeats the crops whatever the model draws.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import kornia.augmentation as K
import numpy as np
import torch
from kornia.constants import DataKey, Resample

from segmodels.classes import IGNORE_INDEX
from segmodels.training.batches import EpochBatches
from segmodels.training.device_data import placement, split_bytes, upload
from segmodels.training.normalize import normalize_tensor

SCALE = (0.7, 1.3)
ROTATION_DEGREES = 30.0
ROTATION_P = 0.5
FLIP_P = 0.5
COLOUR_P = 0.5
WINDOW_PIXELS_PER_CALL = 16_000_000  # windows augmented per kornia call (~64 at crop 256)


def window_size(crop_size: int, augment: bool) -> int:
    """Side of the window that holds a crop after any scale and rotation, same parity as the
    crop (so its centre crop is symmetric)."""
    if not augment:
        return crop_size
    turn = math.radians(ROTATION_DEGREES)
    side = math.ceil(crop_size * (math.cos(turn) + math.sin(turn)) / SCALE[0])
    return side + (side - crop_size) % 2


def augmentation(crop_size: int) -> K.AugmentationSequential:
    """The course's augmentations for (N, 3, W, W) images in [0, 1] and (N, 1, W, W) masks."""
    black = {"padding_mode": "fill", "fill_value": torch.zeros(3)}
    return K.AugmentationSequential(
        K.RandomAffine(degrees=0.0, scale=SCALE, p=1.0, **black),
        K.RandomAffine(degrees=ROTATION_DEGREES, p=ROTATION_P, **black),
        K.CenterCrop(crop_size),
        K.RandomHorizontalFlip(p=FLIP_P),
        K.RandomVerticalFlip(p=FLIP_P),
        K.ColorJitter(brightness=0.2, contrast=0.2, p=COLOUR_P),
        K.ColorJitter(brightness=0.04, saturation=0.2, hue=20 / 360, p=COLOUR_P),
        data_keys=["input", "mask"],
        extra_args={DataKey.MASK: {"resample": Resample.NEAREST, "align_corners": None,
                                   "fill_value": torch.tensor(float(IGNORE_INDEX))}},
    )


class DeviceCrops:
    """One epoch of training batches per iteration, made on ``device``: ``(images, masks)``,
    (B, 3, crop, crop) float32 normalized and (B, crop, crop) int64. Batches follow
    ``EpochBatches`` (shuffled, never a batch of one)."""

    def __init__(
        self,
        images: list[np.ndarray],
        masks: list[np.ndarray],
        *,
        crop_size: int,
        augment: bool,
        crops_per_image: int,
        batch_size: int,
        device: str | torch.device,
        seed: int,
    ):
        self.device = torch.device(device)
        where = placement(split_bytes(images, masks), self.device)
        self.pinned = where != self.device  # host-resident: windows copied per call
        self.images = upload(images, where)
        self.masks = upload(masks, where)
        self.shapes = torch.tensor([m.shape for m in masks], dtype=torch.float64)  # (N, 2) H, W
        self.crop, self.window = crop_size, window_size(crop_size, augment)
        self.pipeline = augmentation(crop_size) if augment else None
        self.batches = EpochBatches(len(images) * crops_per_image, batch_size, seed)
        self.per_call = max(batch_size, WINDOW_PIXELS_PER_CALL // self.window**2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._rng_state = torch.get_rng_state()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        chunk: list[list[int]] = []  # batches augmented in one call (kornia's cost is per call)
        for batch in self.batches:
            if chunk and sum(map(len, chunk)) + len(batch) > self.per_call:
                yield from self._split(chunk)
                chunk = []
            chunk.append(batch)
        if chunk:
            yield from self._split(chunk)

    def _split(self, chunk: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        flat = [i % len(self.images) for batch in chunk for i in batch]
        images, masks = self.crops(torch.tensor(flat))
        start = 0
        for batch in chunk:
            yield images[start:start + len(batch)], masks[start:start + len(batch)]
            start += len(batch)

    def crops(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented crops of the images ``index`` (one per entry), drawn from the stream."""
        n, w = len(index), self.window
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            params = self.pipeline.forward_parameters((n, 3, w, w)) if self.pipeline else None
            position = torch.rand(n, 2, dtype=torch.float64)
            self._rng_state = torch.get_rng_state()
        scale = params[0].data["scale"][:, 0].double() if params else torch.ones(n).double()
        images, masks = self._windows(index, scale, position)
        images = images.permute(0, 3, 1, 2).float().div_(255)  # (N, 3, W, W) in [0, 1]
        masks = masks[:, None]  # (N, 1, W, W) uint8
        if self.pipeline is not None:
            images, masks = self.pipeline(images, masks, params=params)
        return normalize_tensor(images).contiguous(), masks[:, 0].long()

    def _windows(self, index: torch.Tensor, scale: torch.Tensor,
                 position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, W, W, 3) and (N, W, W) uint8 windows on the device; a scaled crop lies anywhere
        inside its image (``position`` in [0, 1) per axis), centred when it does not fit."""
        w = self.window
        extent = (self.crop / scale)[:, None]  # (N, 1): source pixels the crop covers
        size = self.shapes[index]  # (N, 2) H, W
        start = torch.where(size >= extent, position * (size - extent), (size - extent) / 2)
        corner = torch.round(start + (extent - w) / 2).long().tolist()  # window's top, left
        where = self.images[0].device
        images = torch.zeros((len(index), w, w, 3), dtype=torch.uint8, device=where,
                             pin_memory=self.pinned)
        masks = torch.full((len(index), w, w), IGNORE_INDEX, dtype=torch.uint8, device=where,
                           pin_memory=self.pinned)
        for k, (i, (top, left)) in enumerate(zip(index.tolist(), corner)):
            height, width = self.masks[i].shape
            y0, y1 = max(top, 0), min(top + w, height)
            x0, x1 = max(left, 0), min(left + w, width)
            if y0 < y1 and x0 < x1:
                images[k, y0 - top:y1 - top, x0 - left:x1 - left] = self.images[i][y0:y1, x0:x1]
                masks[k, y0 - top:y1 - top, x0 - left:x1 - left] = self.masks[i][y0:y1, x0:x1]
        return (images.to(self.device, non_blocking=True),
                masks.to(self.device, non_blocking=True))
