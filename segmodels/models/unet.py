"""The course's UNet, exactly as specified by the homework.

Conv blocks are (Conv3x3-BN-ReLU) x 2 keeping size; max-pooling goes down; ConvTranspose2d(k=3,
s=2, p=1, output_padding=1) goes up; Dropout(0.5) follows each skip concatenation. Channels
start at ``min_channels`` and double per level, capped at ``max_channels`` in the bottleneck.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segmodels.classes import NUM_CLASSES
from segmodels.errors import ConfigError


class ConvBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class DownBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = ConvBlock(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class UpBlock(nn.Module):
    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(
            in_ch, out_ch, kernel_size=3, stride=2, padding=1, output_padding=1
        )
        self.dropout = nn.Dropout(0.5)
        self.conv = ConvBlock(out_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (N, out_ch, 2h, 2w)
        return self.conv(self.dropout(torch.cat([x, skip], dim=1)))


class UNet(nn.Module):
    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        min_channels: int = 32,
        max_channels: int = 512,
        num_down_blocks: int = 4,
    ):
        super().__init__()
        if num_down_blocks < 1:
            raise ConfigError(f"num_down_blocks must be >= 1, got {num_down_blocks}")
        self.num_down_blocks = num_down_blocks
        channels = [min(min_channels * 2**i, max_channels) for i in range(num_down_blocks + 1)]
        self.stem = ConvBlock(3, channels[0])
        self.down = nn.ModuleList(
            DownBlock(channels[i], channels[i + 1]) for i in range(num_down_blocks)
        )
        self.up = nn.ModuleList(
            UpBlock(channels[i + 1], channels[i], channels[i])
            for i in reversed(range(num_down_blocks))
        )
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        # Each side must divide by 2**num_down_blocks; resize to the nearest size that does.
        factor = 2**self.num_down_blocks
        if torch.jit.is_tracing():
            # Exporting (segmodels.models.export): the sizes are traced tensors, so the same
            # rounding is done in tensor ops (torch.round halves to even, as round() does) and
            # the resize is always in the graph; a resize to the same size changes nothing.
            fit = tuple(torch.clamp(torch.round(s / factor) * factor, min=factor).long()
                        for s in size)
            resize = True
        else:
            fit = tuple(max(factor, round(s / factor) * factor) for s in size)
            resize = fit != tuple(size)
        if resize:
            x = F.interpolate(x, size=fit, mode="bilinear", align_corners=False)
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = skips.pop()  # bottleneck (N, max_ch, H/f, W/f)
        for block in self.up:
            x = block(x, skips.pop())
        logits = self.classifier(x)
        if resize:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits
