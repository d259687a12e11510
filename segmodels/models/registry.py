"""Architecture registry: the single source of truth for the CLI listing, grids and tests."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from segmodels.classes import NUM_CLASSES
from segmodels.errors import ConfigError
from segmodels.models.backbones import list_backbones
from segmodels.models.deeplab import DeepLab
from segmodels.models.smp_models import SmpModel
from segmodels.models.unet import UNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "deeplab": DeepLab,
    "smp": SmpModel,
}
# The options that name a model's network in labels and grid axes, e.g. deeplab/resnet18/aspp.
NAMED_BY: dict[str, tuple[str, ...]] = {
    "unet": (),
    "deeplab": ("backbone", "aspp"),
    "smp": ("arch", "encoder"),
}
# The course's models: the `full` grid and model_configs(). A model registered later (smp)
# enters a grid only when the grid names it.
COURSE_MODELS = ("deeplab", "unet")


def list_models() -> list[str]:
    return sorted(MODELS)


def create_model(name: str, *, num_classes: int = NUM_CLASSES, **kwargs: Any) -> nn.Module:
    """Build a registered architecture.

    ``None`` values are dropped so callers (CLI, grids) that leave an option unset never override
    the architecture's own default: each default lives in one place.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; supported: {', '.join(list_models())}")
    builder = MODELS[name]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = set(inspect.signature(builder).parameters) - {"num_classes"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take {', '.join(unknown)}; "
            f"its options are: {', '.join(sorted(accepted))}"
        )
    return builder(num_classes=num_classes, **kwargs)


def naming_defaults(name: str) -> dict[str, Any]:
    """The model's own defaults of the options that name its network (``NAMED_BY``), read from
    its signature: e.g. ``{"backbone": "resnet18", "aspp": True}`` for deeplab."""
    params = inspect.signature(MODELS[name]).parameters
    return {key: params[key].default for key in NAMED_BY[name]}


def architecture(model: str, **options: Any) -> str:
    """The one name of the network that ``create_model(model, **options)`` builds: its label
    with the model's own defaults filled in (``deeplab`` alone is ``deeplab/resnet18/aspp``),
    plus any other option that changes the network (e.g. ``unet[width=32]``). Precision
    exceptions, GPU packing, inference timing and the report all group trials by it; weights
    (``pretrained``) change what a network knows, not what it costs, so they are not part of it.
    """
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; supported: {', '.join(list_models())}")
    named = {key: default if options.get(key) is None else options[key]
             for key, default in naming_defaults(model).items()}
    other = {key: value for key, value in options.items()
             if key not in NAMED_BY[model] and key != "pretrained" and value is not None
             and key not in ("backbone", "aspp", "arch", "encoder")}
    label = model_label(model, **named)
    if other:
        label += "[" + ",".join(f"{k}={other[k]}" for k in sorted(other)) + "]"
    return label


def model_configs() -> list[dict[str, Any]]:
    """The course's seven model configurations: unet; deeplab x backbone x aspp."""
    configs: list[dict[str, Any]] = [{"model": "unet"}]
    for backbone in list_backbones():
        for aspp in (False, True):
            configs.append({"model": "deeplab", "backbone": backbone, "aspp": aspp})
    return configs


def model_label(model: str, backbone: str | None = None, aspp: bool | None = None,
                arch: str | None = None, encoder: str | None = None) -> str:
    """Short human label used in tables and plots, e.g. ``deeplab/resnet18/aspp`` or
    ``smp/deeplabv3plus/resnet34``."""
    parts = [model, *(name for name in (arch, encoder, backbone) if name)]
    if aspp is not None and model != "unet":
        parts.append("aspp" if aspp else "no-aspp")
    return "/".join(parts)
