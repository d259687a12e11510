"""ASPP and the DeepLab head, after torchvision's ``deeplabv3`` (course variant: the ASPP
projection keeps the backbone's channel count and the head is 3x3 Conv-BN-ReLU + 1x1 conv)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> list[nn.Module]:
    padding = dilation * (kernel // 2)
    return [
        nn.Conv2d(in_ch, out_ch, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class ASPPConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, dilation: int):
        super().__init__(*_conv_bn_relu(in_ch, out_ch, 3, dilation))


class ASPPPooling(nn.Sequential):
    """Image-level features: global average pool, 1x1 Conv-BN-ReLU, upsampled back."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for module in self:
            x = module(x)  # (N, C, 1, 1)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """1x1 branch + atrous 3x3 branches + image pooling -> concat -> 1x1 projection -> dropout."""

    def __init__(
        self, in_ch: int, rates: tuple[int, ...] = (12, 24, 36), out_ch: int | None = None
    ):
        super().__init__()
        out_ch = out_ch or in_ch
        branches: list[nn.Module] = [nn.Sequential(*_conv_bn_relu(in_ch, out_ch, 1))]
        branches += [ASPPConv(in_ch, out_ch, rate) for rate in rates]
        branches.append(ASPPPooling(in_ch, out_ch))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            *_conv_bn_relu(len(branches) * out_ch, out_ch, 1), nn.Dropout(0.5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabHead(nn.Sequential):
    def __init__(self, in_ch: int, num_classes: int):
        super().__init__(*_conv_bn_relu(in_ch, in_ch, 3), nn.Conv2d(in_ch, num_classes, 1))
