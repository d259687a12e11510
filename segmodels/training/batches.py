"""How one epoch's training crops are cut into batches, the same on every device.

No batch ever holds a single crop: BatchNorm cannot normalize one value per channel, and
DeepLab's ASPP image-pooling branch sees exactly one 1x1 value per crop, so a batch of one
fails with "Expected more than 1 value per channel when training". A training set of 13 crops
with batch 4 ended every ASPP trial that way before its first epoch. A remainder of one crop is
folded into the last full batch and the two are split evenly (batch 16, 33 crops: 16 + 9 + 8),
so every crop still trains every epoch and no batch is larger than asked, except with batch 2,
where 2 + 1 can only become one batch of 3. A training set smaller than one batch trains in one
smaller batch, said loudly, and a single crop is refused before any training
(``training_batch_size``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from segmodels.errors import ConfigError
from segmodels.training.config import TrialConfig


def batch_sizes(crops: int, batch_size: int) -> list[int]:
    """Sizes of an epoch's batches: full batches, then the rest; never a batch of one when
    ``batch_size`` > 1 and ``crops`` > 1."""
    full, rest = divmod(crops, batch_size)
    sizes = [batch_size] * full + ([rest] if rest else [])
    if rest == 1 and full and batch_size > 1:
        merged = batch_size + 1
        sizes[-2:] = [merged - merged // 2, merged // 2] if merged // 2 >= 2 else [merged]
    return sizes


class EpochBatches(Sampler[list[int]]):
    """Shuffled crop indices of one epoch, cut by ``batch_sizes``: a DataLoader
    ``batch_sampler`` for the CPU path and the order of the device path. Its own generator,
    seeded from the trial, makes the order repeat."""

    def __init__(self, crops: int, batch_size: int, seed: int):
        self.crops = crops
        self.sizes = batch_sizes(crops, batch_size)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.crops, generator=self.generator).tolist()
        start = 0
        for size in self.sizes:
            yield order[start:start + size]
            start += size


def training_batch_size(train_images: int, cfg: TrialConfig) -> tuple[int, str | None]:
    """The batch size a trial trains with, and a note when it is smaller than asked.

    A training set smaller than one batch trains in one batch of all its crops, and the note
    says so (the runner prints it before Ray starts, the trial warns in its log); a single crop
    cannot train a BatchNorm model and is refused with the figures and the fix."""
    crops = train_images * cfg.crops_per_image
    if crops >= cfg.batch_size:
        return cfg.batch_size, None
    sizes = (f"the training set gives {crops} crop(s) per epoch ({train_images} image(s) x "
             f"crops_per_image {cfg.crops_per_image}), fewer than one batch (batch_size "
             f"{cfg.batch_size})")
    if crops < 2:
        raise ConfigError(f"{sizes}, and a batch of one crop cannot train BatchNorm layers; raise "
                          f"--crops-per-image to {math.ceil(cfg.batch_size / max(train_images, 1))}"
                          " or add training images")
    return crops, (f"{sizes}: training in batches of {crops}; set --batch-size {crops} or "
                   "raise --crops-per-image to choose")
