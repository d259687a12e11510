"""DeepLab: backbone -> optional ASPP -> head -> bilinear upsample to the input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segmodels.classes import NUM_CLASSES
from segmodels.errors import ConfigError
from segmodels.models.aspp import ASPP, DeepLabHead
from segmodels.models.backbones import build_backbone, get_backbone_spec


class DeepLab(nn.Module):
    def __init__(
        self,
        backbone: str = "resnet18",
        aspp: bool = True,
        num_classes: int = NUM_CLASSES,
        pretrained: bool = False,
        output_stride: int | None = None,
        aspp_rates: tuple[int, ...] = (12, 24, 36),
        bn_momentum: float | None = 0.1,
    ):
        super().__init__()
        spec = get_backbone_spec(backbone)
        if output_stride not in (None, spec.output_stride, spec.dilated_output_stride):
            strides = sorted({s for s in (spec.output_stride, spec.dilated_output_stride) if s})
            raise ConfigError(
                f"backbone {backbone!r} supports output_stride in {strides}, got {output_stride}"
            )
        dilated = output_stride is not None and output_stride != spec.output_stride
        self.backbone = build_backbone(backbone, pretrained=pretrained, dilated=dilated)
        if bn_momentum is not None:
            # torchvision's MobileNetV3 uses momentum 0.01, tuned for long ImageNet runs: over
            # a short run its running statistics lag so far behind that eval-mode predictions
            # collapse to one class. 0.1 is PyTorch's default (and ResNet's and VGG's).
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.momentum = bn_momentum
        channels = spec.out_channels
        self.aspp = ASPP(channels, tuple(aspp_rates)) if aspp else nn.Identity()
        self.head = DeepLabHead(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.backbone(x)  # (N, C, H/s, W/s)
        logits = self.head(self.aspp(features))  # (N, K, H/s, W/s)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
