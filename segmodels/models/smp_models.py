"""segmentation-models-pytorch (smp) as one model family: ``create_model("smp", arch=, encoder=)``.

smp wires an encoder, a decoder and a head; this wrapper gives the result segsweep's model
contract: logits ``(N, classes, H, W)`` for any ``H, W``. smp needs sides divisible by the
encoder's output stride (32 for most; 16 or 8 where the encoder is dilated), so the input is
zero-padded at the bottom and right (zero is the mean colour after normalisation) and the logits
are cropped back: nothing is resized, and padded pixels never reach the loss or the metrics.

Names come from smp's own lists: ``smp.MODEL_ARCHITECTURES_MAPPING`` for architectures and
``smp.encoders.get_encoder_names()`` for encoders, plus any timm model as ``tu-NAME`` (checked
against timm's list). smp itself says which combinations it cannot build (DeepLabV3 on a VGG
encoder, which cannot be dilated); that becomes a ``ConfigError`` naming both, raised on a build
without weights, so the runner refuses it before Ray starts and before any download.
smp is imported when first needed: ``import segmodels`` stays as fast as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segmodels.classes import NUM_CLASSES
from segmodels.errors import ConfigError, SegsweepError
from segmodels.models.backbones import PretrainedWeightsUnavailable

TIMM_PREFIX = "tu-"
TIMM_HINT = (f"; or any timm model as {TIMM_PREFIX}NAME (list them: "
             "python -c 'import timm; print(timm.list_models())')")


def _smp() -> Any:
    import segmentation_models_pytorch as smp

    return smp


def list_archs() -> list[str]:
    """smp's architectures, by the lower-case names ``smp.create_model`` takes."""
    return sorted(_smp().MODEL_ARCHITECTURES_MAPPING)


class EncoderNames:
    """smp's encoders plus timm's as ``tu-NAME``: ``in`` accepts both; iterating gives smp's
    (timm has over a thousand), and ``hint`` says how to find timm's."""

    hint = TIMM_HINT

    def _names(self) -> list[str]:
        return sorted(_smp().encoders.get_encoder_names())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name.startswith(TIMM_PREFIX):
            import timm

            model = name[len(TIMM_PREFIX):]  # a tag (resnet34.a1_in1k) names pretrained weights
            return timm.is_model(model) and ("." not in model or _timm_pretrained(model))
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def list_encoders() -> EncoderNames:
    return EncoderNames()


def encoder_weights(encoder: str) -> str | bool | None:
    """What smp's ``encoder_weights`` must be for pretrained ``encoder``: the name of its
    ImageNet weights (``imagenet``, else the first smp has, e.g. ``instagram``), ``True`` for a
    timm encoder with pretrained weights; None where there are none."""
    if encoder.startswith(TIMM_PREFIX):
        return True if _timm_pretrained(encoder[len(TIMM_PREFIX):]) else None
    settings = _smp().encoders.encoders[encoder]["pretrained_settings"]
    if "imagenet" in settings:
        return "imagenet"
    return next(iter(settings), None)


def _timm_pretrained(model: str) -> bool:
    import timm

    return timm.models.is_model_pretrained(model)


def check_names(arch: str, encoder: str) -> None:
    """Unknown names are one ConfigError listing smp's valid values."""
    if arch not in list_archs():
        raise ConfigError(f"unknown smp architecture {arch!r}; supported: "
                          f"{', '.join(list_archs())}")
    names = list_encoders()
    if encoder not in names:
        raise ConfigError(f"unknown smp encoder {encoder!r}; supported: "
                          f"{', '.join(names)}{names.hint}")


def weights_advice(encoder: str) -> str:
    """How to get ``encoder``'s weights onto an offline machine, or do without them."""
    return (
        "Either pre-download them on a machine with internet access (python -c \"import "
        "segmentation_models_pytorch as smp; smp.create_model('unet', "
        f"encoder_name='{encoder}', encoder_weights={encoder_weights(encoder)!r})\") and copy "
        "$HF_HOME/hub (default ~/.cache/huggingface/hub) to this machine, or train from scratch "
        "with pretrained=False (CLI: drop --pretrained)."
    )


class SmpModel(nn.Module):
    """An smp architecture on an smp or timm encoder, for any input size (pad, then crop)."""

    def __init__(self, arch: str = "unet", encoder: str = "resnet34",
                 num_classes: int = NUM_CLASSES, pretrained: bool = False):
        super().__init__()
        check_names(arch, encoder)
        weights = encoder_weights(encoder) if pretrained else None
        if pretrained and weights is None:
            raise ConfigError(f"smp encoder {encoder!r} has no pretrained weights; train it from "
                              "scratch with pretrained=False")
        self.net = _build(arch, encoder, weights, num_classes)
        self.divisor = int(self.net.encoder.output_stride)  # smp's own input-size rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.divisor, -w % self.divisor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))  # (N, 3, H + pad_h, W + pad_w), zeros
        return self.net(x)[..., :h, :w]  # (N, K, H, W)


def _build(arch: str, encoder: str, weights: str | bool | None, num_classes: int) -> nn.Module:
    """smp's model; its refusals become ConfigError, failed weight downloads
    PretrainedWeightsUnavailable."""
    try:
        return _smp().create_model(arch, encoder_name=encoder, encoder_weights=weights,
                                   classes=num_classes)
    except (OSError, RuntimeError) as exc:
        # OSError: huggingface_hub's "neither in the cache nor downloadable", urllib's failed
        # download (timm's URL-hosted weights); RuntimeError: an unreadable weights file.
        if weights is None or isinstance(exc, SegsweepError):
            raise
        raise PretrainedWeightsUnavailable(
            f"could not load the pretrained weights of smp encoder {encoder!r} "
            f"({type(exc).__name__}: {exc}). {weights_advice(encoder)}") from exc
    except (ValueError, KeyError, AssertionError) as exc:  # smp: this pairing cannot be built
        reason = str(exc.args[0]) if exc.args else type(exc).__name__  # KeyError: no repr
        raise ConfigError(f"smp cannot build architecture {arch!r} with encoder {encoder!r}: "
                          f"{reason}; choose another encoder or architecture") from None
