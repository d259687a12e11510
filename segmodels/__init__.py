"""segmodels: models, data, metrics and the training loop of one segsweep trial."""

from segmodels import metrics
from segmodels.backbones import PretrainedWeightsUnavailable, list_backbones
from segmodels.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from segmodels.classes import CLASS_NAMES, NUM_CLASSES
from segmodels.config import TrialConfig
from segmodels.data import DatasetError, SegmentationData, load_dataset, validate_dataset
from segmodels.errors import ConfigError, SegsweepError
from segmodels.registry import create_model, list_models, model_configs, model_label
from segmodels.size import model_size_mb, parameter_count

__all__ = [
    "CLASS_NAMES",
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
