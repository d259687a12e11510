"""The Lightning module of one trial: cross-entropy training, confusion-matrix validation.

Per-step work stays on the device (loss sums and the confusion matrices are tensors); values
are synchronised to Python once per epoch, in ``epoch_metrics``. A validation batch holds whole
images of one size (``segmodels.training.eval_batches``); each image keeps its own confusion matrix.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from segmodels import metrics
from segmodels.classes import CLASS_NAMES, IGNORE_INDEX
from segmodels.colors import side_by_side
from segmodels.models import create_model
from segmodels.training.config import TrialConfig
from segmodels.training.eval_batches import image_confusions
from segmodels.training.losses import build_loss
from segmodels.training.normalize import IMAGENET_MEAN, IMAGENET_STD
from segmodels.training.optim import LR_SCHEDULERS, OPTIMIZERS


def _denormalize(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) normalized -> (H, W, 3) uint8 for pictures."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=image.device)[:, None, None]
    pixels = ((image * std + mean) * 255).clamp(0, 255).byte()
    return pixels.permute(1, 2, 0).cpu().numpy()


class SegmentationModule(pl.LightningModule):
    def __init__(
        self,
        cfg: TrialConfig,
        num_classes: int = len(CLASS_NAMES),
        class_names: tuple[str, ...] = CLASS_NAMES,
    ):
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.class_names = class_names
        self.model = create_model(cfg.model, num_classes=num_classes, **cfg.model_args())
        self.loss_fn = build_loss(cfg.loss, num_classes, cfg.class_weights)
        self.resume_state: dict[str, Any] | None = None  # optimizer/scheduler to restore
        self.pictures: list[np.ndarray] = []
        self.memory_format = torch.contiguous_format  # the trial sets channels_last on CUDA
        self.val_seconds = 0.0  # the last validation pass, device work included
        self.val_order: list[int] | None = None  # ValidationBatches.order; None: split order

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    def on_train_epoch_start(self) -> None:
        self._train_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        self._train_pixels = torch.zeros((), device=self.device, dtype=torch.float64)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        images, masks = batch
        loss = self.loss_fn(self(images), masks)
        valid = (masks != IGNORE_INDEX).sum()
        self._train_loss += loss.detach() * valid
        self._train_pixels += valid
        return loss

    def _synchronize(self) -> None:
        """Wait for the device's queued work, so that validation's time is its own."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def on_validation_epoch_start(self) -> None:
        k = self.num_classes
        self._image_cms: list[torch.Tensor] = []  # (b, K, K) per batch
        self._val_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        self._val_pixels = torch.zeros((), device=self.device, dtype=torch.float64)
        self._cm = torch.zeros(k, k, dtype=torch.int64, device=self.device)
        self.pictures = []
        self._synchronize()
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self) -> None:
        self._synchronize()
        self.val_seconds = time.perf_counter() - self._val_start

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, masks = batch  # (b, 3, H, W), (b, H, W): whole images of one size
        logits = self(images)
        for logit, mask in zip(logits, masks):  # per image, as at batch 1: a Dice or weighted
            valid = (mask != IGNORE_INDEX).sum()  # loss of a batch is not the sum of its images'
            self._val_loss += self.loss_fn(logit[None], mask[None]).detach() * valid
            self._val_pixels += valid
        pred = logits.argmax(1)
        cms = image_confusions(pred, masks, self.num_classes, IGNORE_INDEX)
        self._cm += cms.sum(0)
        self._image_cms.append(cms)
        for i in range(min(len(images), self.cfg.log_images - len(self.pictures))):
            self.pictures.append(
                side_by_side(
                    _denormalize(images[i]),
                    pred[i].byte().cpu().numpy(),
                    masks[i].byte().cpu().numpy(),
                )
            )

    def image_confusions(self) -> np.ndarray:
        """(N, K, K) int64 counts of each validation image of the last pass, target x
        prediction, in the split's image order (whatever order the batches took): the
        per-image evidence behind the epoch's scores, which the analysis resamples."""
        cms = torch.cat(self._image_cms).cpu().numpy()
        if self.val_order is None:
            return cms
        ordered = np.empty_like(cms)
        ordered[self.val_order] = cms
        return ordered

    def epoch_metrics(self) -> dict[str, float]:
        """This epoch's train and validation figures (one device sync)."""
        cm = self._cm.cpu()
        course = metrics.course_scores(torch.cat(self._image_cms).cpu())
        row = {
            "train_loss": float(self._train_loss / self._train_pixels.clamp(min=1)),
            "val_loss": float(self._val_loss / self._val_pixels.clamp(min=1)),
            "val_miou_global": metrics.mean_iou(cm),
            "val_miou_per_image": course["miou"],
            "val_accuracy": metrics.pixel_accuracy(cm),
            "val_mean_class_recall": metrics.mean_class_recall(cm),
            "val_mean_class_recall_per_image": course["mean_class_recall"],
            "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
        }
        row["val_miou"] = row[f"val_miou_{self.cfg.miou_definition}"]
        for name, iou in zip(self.class_names, metrics.iou_per_class(cm).tolist()):
            row[f"val_iou_{name}"] = iou
        row["val_confusion"] = cm.tolist()
        return row

    def configure_optimizers(self):
        cfg = self.cfg
        optimizer = OPTIMIZERS[cfg.optimizer](self.parameters(), cfg.lr, cfg.weight_decay)
        scheduler = LR_SCHEDULERS[cfg.lr_scheduler](optimizer, cfg.epochs)
        if self.resume_state is not None:
            optimizer.load_state_dict(self.resume_state["optimizer"])
            scheduler.load_state_dict(self.resume_state["lr_scheduler"])
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
