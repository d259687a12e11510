"""One trial's configuration: a plain dataclass built from Ray Tune's ``config`` dict.

``TrialConfig`` is the one authority on a trial's settings: which keys exist, their types, their
valid values (read from the registries), how CLI text becomes a typed value, and how a trial's
settings are merged from their sources (``trial_settings``). Grids, the CLI, the runner, the
trainable and the report all go through it. The models' registry (torch) loads when a model key
is checked: the CLI's parser reads the defaults and the other choices without it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from segmodels.classes import CLASS_NAMES, NUM_CLASSES
from segmodels.errors import ConfigError
from segmodels.training.losses import list_losses
from segmodels.training.optim import LR_SCHEDULERS, OPTIMIZERS

PRECISIONS = ("auto", "32", "16-mixed", "bf16-mixed")
MIOU_DEFINITIONS = ("global", "per_image")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
POSITIVE_INTS = ("epochs", "batch_size", "crop_size", "crops_per_image", "inference_repeats",
                 "inference_height", "inference_width")
OPTIONAL_POSITIVE_INTS = ("num_threads",)  # None: derived from the trial's CPUs
NON_NEGATIVE_INTS = ("log_images", "num_workers")  # num_workers may also be None (derived)


@dataclass
class TrialConfig:
    """Defaults reproduce the course's setting (50 epochs, 256 crops, batch 16, Adam 1e-3)."""

    model: str = "unet"
    backbone: str | None = None
    aspp: bool | None = None
    arch: str | None = None  # smp's architecture (model "smp")
    encoder: str | None = None  # smp's encoder, or a timm model as tu-NAME (model "smp")
    pretrained: bool = False
    augment: bool = True
    epochs: int = 50
    batch_size: int = 16
    crop_size: int = 256
    crops_per_image: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    loss: str = "ce"  # segmodels/training/losses.py
    class_weights: list[float] | None = None  # weighted_ce's; the runner computes them
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
    def from_dict(cls, config: Mapping[str, Any]) -> TrialConfig:
        """Checked settings; ``ConfigError`` names the unknown keys, or the first bad value."""
        unknown = sorted(set(config) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown trial config key(s) {', '.join(unknown)}; "
                              f"valid keys: {', '.join(sorted(FIELDS))}")
        for key, value in config.items():
            check_value(key, value)
        cfg = cls(**config)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Ranges that types alone do not say (choices are checked per key by ``check_value``)."""
        for name in POSITIVE_INTS:
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr}")
        for name in OPTIONAL_POSITIVE_INTS:
            value = getattr(self, name)
            if value is not None and int(value) <= 0:
                raise ConfigError(f"{name} must be > 0 (or unset), got {value}")
        for name in NON_NEGATIVE_INTS:
            value = getattr(self, name)
            if value is not None and int(value) < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be a finite number >= 0, got "
                              f"{self.weight_decay}")
        if self.class_weights is not None:
            weights = list(self.class_weights)
            if len(weights) != NUM_CLASSES:
                raise ConfigError(f"class_weights needs one weight per class ({NUM_CLASSES}: "
                                  f"{', '.join(CLASS_NAMES)}), got {len(weights)}")
            if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
                raise ConfigError(f"class_weights must be finite, >= 0 and not all 0, got "
                                  f"{weights}")

    @property
    def architecture(self) -> str:
        """The network this configuration builds (``segmodels.models.architecture``)."""
        from segmodels.models import architecture

        return architecture(self.model, **self.model_args())

    def network_key(self) -> str:
        """Equal for every configuration that builds the same untrained network (weights
        aside): what checks, disk estimates and inference timing do once per network, not once
        per grid point."""
        args = {**self.model_args(), "pretrained": None}
        return repr((self.model, sorted(args.items(), key=lambda item: item[0])))

    def model_args(self) -> dict[str, Any]:
        """Arguments of ``create_model`` (its registry drops the None ones)."""
        return {
            "backbone": self.backbone,
            "aspp": self.aspp,
            "arch": self.arch,
            "encoder": self.encoder,
            "pretrained": self.pretrained or None,
            **self.model_kwargs,
        }


def trial_settings(fixed: Mapping[str, Any], point: Mapping[str, Any],
                   searched: Mapping[str, Any] | None = None,
                   defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The one merge of a trial's settings, later wins: ``defaults`` (the recorded TrialConfig
    defaults, when reading an old sweep) <- the sweep's fixed settings <- the grid point <- the
    values a searcher proposed."""
    return {**(defaults or {}), **fixed, **point, **(searched or {})}


def _models_list(name: str) -> Callable[[], Collection[str]]:
    """A listing of the models' registry, read when first asked for (it imports torch)."""
    def read() -> Collection[str]:
        from segmodels import models

        return getattr(models, name)()

    return read


# Keys whose values come from a registry or a fixed list: the one list of each.
CHOICES: dict[str, Callable[[], Collection[str]]] = {
    "model": _models_list("list_models"),
    "backbone": _models_list("list_backbones"),
    "arch": _models_list("list_archs"),
    # accepts timm's tu-NAME too; lists smp's and says where timm's are
    "encoder": _models_list("list_encoders"),
    "loss": list_losses,
    "optimizer": lambda: list(OPTIMIZERS),
    "lr_scheduler": lambda: list(LR_SCHEDULERS),
    "precision": lambda: PRECISIONS,
    "miou_definition": lambda: MIOU_DEFINITIONS,
    "memory_format": lambda: MEMORY_FORMATS,
}
FIELDS = {f.name: f for f in dataclasses.fields(TrialConfig)}
_TYPE_HINTS = typing.get_type_hints(TrialConfig)


def choices(key: str) -> list[str]:
    """Valid values of a key that has a list of choices (``CHOICES``)."""
    return list(CHOICES[key]())


def check_value(key: str, value: Any, where: str | None = None) -> None:
    """One setting against TrialConfig's fields, types and registries; ``where`` names it in
    the message (e.g. ``axes.model`` in a grid file)."""
    where = where or key
    if key not in FIELDS:
        raise ConfigError(f"unknown key {where!r}; valid keys: {', '.join(sorted(FIELDS))}")
    hint = _TYPE_HINTS[key]
    if key in CHOICES and not (value is None and _type_ok(None, hint)):
        valid = CHOICES[key]()
        if value not in valid:
            raise ConfigError(f"{where} = {value!r} is not valid; valid values: "
                              f"{', '.join(valid)}{getattr(valid, 'hint', '')}")
        return
    if not _type_ok(value, hint):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{where} = {value!r} has the wrong type; expected {name}")


def parse_value(key: str, text: str) -> Any:
    """Command-line text as the type the field declares (``precision=32`` stays "32",
    ``epochs=2`` becomes 2), then checked."""
    if key not in FIELDS:
        raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(sorted(FIELDS))}")
    hint = _TYPE_HINTS[key]
    kinds = typing.get_args(hint) or (hint,)
    value: Any = text
    if bool in kinds and text.lower() in ("true", "false"):
        value = text.lower() == "true"
    elif text.lower() in ("none", "null") and type(None) in kinds:
        value = None
    else:
        for kind in (int, float):
            if kind in kinds:
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
    check_value(key, value)
    return value


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    base = origin or hint
    if isinstance(value, bool):
        return base is bool
    if base is float:  # numpy scalars from a searcher count as numbers
        return isinstance(value, numbers.Real)
    if base is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, base)
