"""segmodels: the models, data and training loop of one segsweep trial, in three wings.

- ``segmodels.data``: files on disk -> checked, decoded uint8 arrays (no torch).
- ``segmodels.models``: the networks, their registry and their cost (size, inference time).
- ``segmodels.training``: a trial's configuration, crops, losses, loop and checkpoints.

The ground every wing stands on sits here: ``errors`` (the one error base the CLI turns into
one line), ``classes`` (FloodNet's classes and the unlabelled value), ``colors`` (the class
palette), and ``metrics`` (pure functions of a confusion matrix). ``data`` and ``models``
import only the ground and never each other; ``training`` builds on both.
"""

from segmodels import metrics
from segmodels.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from segmodels.data import DatasetError, SegmentationData, load_dataset
from segmodels.data import load_dataset as validate_dataset  # the earlier name, kept working
from segmodels.errors import ConfigError, SegsweepError
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
