"""Backbone registry for DeepLab.

Backbone contract (the one place it is written down): a backbone is an ``nn.Module`` whose
``forward(x)`` takes images ``(N, 3, H, W)`` and returns a single feature map
``(N, spec.out_channels, H / s, W / s)`` where ``s`` is the spec's ``output_stride``
(``dilated_output_stride`` when built with ``dilated=True``). Only the convolutional part of a
torchvision classifier is kept; its classifier head is dropped.

Adding a backbone is one ``BACKBONES`` entry.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models._utils import IntermediateLayerGetter

from segmodels.errors import ConfigError, SegsweepError


class PretrainedWeightsUnavailable(SegsweepError, RuntimeError):
    """ImageNet weights were asked for but could not be downloaded or read from the cache."""


@dataclass(frozen=True)
class BackboneSpec:
    builder: Callable[[tvm.WeightsEnum | None, bool], nn.Module]  # (weights, dilated) -> module
    weights: tvm.WeightsEnum  # torchvision's ImageNet weights, loaded when pretrained
    out_channels: int
    output_stride: int
    supports_dilation: bool
    dilated_output_stride: int | None = None


def _load_torchvision(factory: Callable[..., nn.Module], weights, **kwargs) -> nn.Module:
    """Build a torchvision model, turning a failed weight download into an actionable error."""
    try:
        return factory(weights=weights, **kwargs)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        if weights is None:
            raise
        raise PretrainedWeightsUnavailable(
            f"could not load ImageNet weights {weights} ({type(exc).__name__}: {exc}). "
            f"{weights_advice(weights)}"
        ) from exc


def weights_advice(weights: tvm.WeightsEnum) -> str:
    """How to get torchvision ``weights`` onto an offline machine, or do without them."""
    return (
        "Either pre-download them on a machine with internet access "
        f'(python -c \'import torchvision; torchvision.models.get_weight("{weights}")'
        ".get_state_dict(progress=True)') and copy $TORCH_HOME/hub/checkpoints "
        "(default ~/.cache/torch/hub/checkpoints) to this machine, "
        "or train from scratch with pretrained=False (CLI: drop --pretrained)."
    )


def _resnet18(weights: tvm.WeightsEnum | None, dilated: bool) -> nn.Module:
    net = _load_torchvision(tvm.resnet18, weights)
    return IntermediateLayerGetter(net, return_layers={"layer4": "out"})


def _vgg11_bn(weights: tvm.WeightsEnum | None, dilated: bool) -> nn.Module:
    return _load_torchvision(tvm.vgg11_bn, weights).features


def _mobilenet_v3_small(weights: tvm.WeightsEnum | None, dilated: bool) -> nn.Module:
    return _load_torchvision(tvm.mobilenet_v3_small, weights, dilated=dilated).features


class _OutputOnly(nn.Module):
    """Unwraps IntermediateLayerGetter's dict so every backbone returns a plain tensor."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out["out"] if isinstance(out, dict) else out


# ResNet18 uses BasicBlocks, which torchvision cannot dilate; VGG downsamples by max-pooling.
BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(_resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, 512, 32, False),
    "vgg11_bn": BackboneSpec(_vgg11_bn, tvm.VGG11_BN_Weights.IMAGENET1K_V1, 512, 32, False),
    "mobilenet_v3_small": BackboneSpec(_mobilenet_v3_small,
                                       tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1,
                                       576, 32, True, 16),
}


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def get_backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(
            f"unknown backbone {name!r}; supported: {', '.join(list_backbones())}"
        ) from None


def build_backbone(name: str, *, pretrained: bool = False, dilated: bool = False) -> nn.Module:
    """Build a backbone following the contract in this module's docstring."""
    spec = get_backbone_spec(name)
    if dilated and not spec.supports_dilation:
        dilatable = [n for n, s in BACKBONES.items() if s.supports_dilation]
        raise ConfigError(
            f"backbone {name!r} does not support dilated (output stride "
            f"< {spec.output_stride}) mode; backbones that do: {', '.join(dilatable)}"
        )
    return _OutputOnly(spec.builder(spec.weights if pretrained else None, dilated))
