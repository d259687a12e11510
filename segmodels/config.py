"""One trial's configuration: a plain dataclass built from Ray Tune's ``config`` dict."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULERS = ("none", "step", "cosine", "poly")
PRECISIONS = ("auto", "32", "16-mixed", "bf16-mixed")
MIOU_DEFINITIONS = ("global", "per_image")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


@dataclass
class TrialConfig:
    """Defaults reproduce the course's setting (50 epochs, 256 crops, batch 16, Adam 1e-3)."""

    model: str = "unet"
    backbone: str | None = None
    aspp: bool | None = None
    pretrained: bool = False
    augment: bool = True
    epochs: int = 50
    batch_size: int = 16
    crop_size: int = 256
    crops_per_image: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    lr_scheduler: str = "none"
    seed: int = 0
    precision: str = "auto"  # auto: bf16/fp16 AMP on CUDA, fp32 on CPU
    memory_format: str = "auto"  # auto: channels_last on CUDA (tensor cores), contiguous on CPU
    miou_definition: str = "global"  # which mIoU is "val_miou" (both are logged)
    num_workers: int | None = None  # None: derived from the trial's CPUs
    num_threads: int | None = None  # None: the trial's CPUs
    inference_repeats: int = 5
    inference_height: int = 750
    inference_width: int = 1000
    log_images: int = 4  # validation images written to TensorBoard per epoch
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrialConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"unknown trial config key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(sorted(known))}"
            )
        cfg = cls(**config)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("miou_definition", self.miou_definition, MIOU_DEFINITIONS)
        _choice("memory_format", self.memory_format, MEMORY_FORMATS)
        for name in ("epochs", "batch_size", "crop_size", "crops_per_image", "inference_repeats"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")

    def model_args(self) -> dict[str, Any]:
        """Arguments of ``create_model`` (its registry drops the None ones)."""
        return {
            "backbone": self.backbone,
            "aspp": self.aspp,
            "pretrained": self.pretrained or None,
            **self.model_kwargs,
        }


def _choice(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{key} must be one of {', '.join(valid)}; got {value!r}")
