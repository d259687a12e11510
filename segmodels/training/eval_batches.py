"""Validation on whole images: uploaded once, normalized on the device, batched by size.

The validation split goes to the device once as uint8 (to the GPU when it fits; else each
batch is staged in a pinned buffer and copied without blocking: ``device_data``) and is
normalized there. Images of one size go through the model together, up to ``max_pixels``
per forward pass (the usual case: a dataset's images share one size); an image of another size
gets its own batch, so no padding ever changes a prediction. Per-image confusion matrices come
from one ``bincount`` per batch.

On CPU every image is its own batch: batched UNet validation was ~1.2x slower there (1 thread,
240x320 images), so a CPU trial validates as the course does, one image at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from segmodels.training.device_data import placement, split_bytes, upload
from segmodels.training.normalize import normalize_tensor


def pixels_per_batch(batch_size: int, crop_size: int, accelerator: str) -> int:
    """On a GPU four training batches' pixels (inference keeps no activations for the backward
    pass, so it fits where training did); on CPU one image per batch."""
    return 4 * batch_size * crop_size**2 if accelerator == "gpu" else 0


def image_confusions(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int) -> torch.Tensor:
    """(B, K, K) int64 target x prediction counts of each image of a (B, H, W) batch. Ignored
    pixels are counted in one extra bin and dropped: no boolean indexing, whose output size
    would make the host wait for the GPU."""
    k, cells = num_classes, len(target) * num_classes**2
    valid = (target >= 0) & (target < k) & (target != ignore_index)
    image = torch.arange(len(target), device=target.device).view(-1, 1, 1)
    index = torch.where(valid, (image * k + target.long()) * k + pred.long(), cells)
    return torch.bincount(index.flatten(), minlength=cells + 1)[:cells].view(-1, k, k)


class ValidationBatches:
    """Iterable of ``(images, masks)``: (b, 3, H, W) float32 normalized and (b, H, W) int64,
    on ``device``, every image once per iteration, images of one size per batch."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray],
                 device: str | torch.device, max_pixels: int):
        self.device = torch.device(device)
        where = placement(split_bytes(images, masks), self.device)
        self.pinned = where != self.device  # host-resident: batches staged in pinned memory
        self.images = upload(images, where)
        self.masks = upload(masks, where)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, mask in enumerate(masks):
            by_size.setdefault(mask.shape, []).append(i)
        self.batches: list[list[int]] = []
        for (height, width), members in by_size.items():
            per = max(1, max_pixels // (height * width))
            self.batches += [members[k:k + per] for k in range(0, len(members), per)]

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def order(self) -> list[int]:
        """The split's index of each image, in the order the batches yield them."""
        return [i for batch in self.batches for i in batch]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches:
            images = self._stack(self.images, batch)  # (b, H, W, 3) uint8
            masks = self._stack(self.masks, batch)
            yield normalize_tensor(images.permute(0, 3, 1, 2).float().div_(255)), masks.long()

    def _stack(self, tensors: list[torch.Tensor], batch: list[int]) -> torch.Tensor:
        parts = [tensors[i] for i in batch]
        out = torch.empty((len(parts), *parts[0].shape), dtype=parts[0].dtype,
                          device=parts[0].device, pin_memory=self.pinned)
        return torch.stack(parts, out=out).to(self.device, non_blocking=True)
