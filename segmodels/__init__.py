"""segmodels: the models, data and training loop of one segsweep trial, in three wings.

- ``segmodels.data``: files on disk -> checked, decoded uint8 arrays (no torch).
- ``segmodels.models``: the networks, their registry and their cost (size, inference time).
- ``segmodels.training``: a trial's configuration, crops, losses, loop and checkpoints.

The ground every wing stands on sits here: ``errors`` (the one error base the CLI turns into
one line), ``classes`` (FloodNet's classes and the unlabelled value), ``colors`` (the class
palette), and ``metrics`` (pure functions of a confusion matrix). ``data`` and ``models``
import only the ground and never each other; ``training`` builds on both.

The names of the wings load on first use: importing one light module (``segmodels.errors``,
``segmodels.data``, a trial's configuration) does not import torch through this face, so the
CLI answers ``--help`` and a bad flag at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segmodels.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from segmodels.errors import ConfigError, DatasetError, SegsweepError

if TYPE_CHECKING:
    from segmodels import metrics
    from segmodels.data import SegmentationData, load_dataset
    from segmodels.data import load_dataset as validate_dataset
    from segmodels.models import (
        PretrainedWeightsUnavailable,
        create_model,
        list_backbones,
        list_models,
        model_configs,
        model_label,
        model_size_mb,
        parameter_count,
    )
    from segmodels.training import (
        CheckpointError,
        TrialConfig,
        load_checkpoint,
        model_from_checkpoint,
    )

_LOADED_ON_USE = {
    "SegmentationData": "segmodels.data",
    "load_dataset": "segmodels.data",
    "PretrainedWeightsUnavailable": "segmodels.models",
    "create_model": "segmodels.models",
    "list_backbones": "segmodels.models",
    "list_models": "segmodels.models",
    "model_configs": "segmodels.models",
    "model_label": "segmodels.models",
    "model_size_mb": "segmodels.models",
    "parameter_count": "segmodels.models",
    "CheckpointError": "segmodels.training",
    "TrialConfig": "segmodels.training",
    "load_checkpoint": "segmodels.training",
    "model_from_checkpoint": "segmodels.training",
}
_RENAMED = {"validate_dataset": ("segmodels.data", "load_dataset")}  # the earlier name


def __getattr__(name: str) -> Any:
    """A wing's name (or the ``metrics`` module, which imports torch), loaded when first asked
    for."""
    if name == "metrics":
        return importlib.import_module("segmodels.metrics")
    if name in _LOADED_ON_USE:
        return getattr(importlib.import_module(_LOADED_ON_USE[name]), name)
    if name in _RENAMED:
        module, original = _RENAMED[name]
        return getattr(importlib.import_module(module), original)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "PretrainedWeightsUnavailable",
    "SegmentationData",
    "SegsweepError",
    "TrialConfig",
    "create_model",
    "list_backbones",
    "list_models",
    "load_checkpoint",
    "load_dataset",
    "metrics",
    "model_configs",
    "model_from_checkpoint",
    "model_label",
    "model_size_mb",
    "parameter_count",
    "validate_dataset",
]
