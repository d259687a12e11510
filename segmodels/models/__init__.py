"""The models wing: the networks a sweep compares, and what each costs (no Lightning, kornia
or albumentations).

- ``registry``: the one list of models (``create_model``, ``list_models``), the options that
  name a network (``NAMED_BY``), and ``architecture``, the one name of a built network.
- ``backbones``: DeepLab's backbones (a registry of specs) and their contract.
- ``aspp``, ``deeplab``, ``unet``: the course's networks.
- ``smp_models``: segmentation-models-pytorch as one model family (``arch`` x ``encoder``).
- ``pretrained``: what ``--pretrained`` loads for each model, and fetching it once.
- ``cost``: a model's size and its inference time per frame.
"""

from segmodels.models import backbones, smp_models
from segmodels.models.backbones import (
    BACKBONES,
    PretrainedWeightsUnavailable,
    get_backbone_spec,
    list_backbones,
)
from segmodels.models.cost import (
    model_size_mb,
    parameter_count,
    time_inference,
    time_inference_runs,
)
from segmodels.models.pretrained import Weights, fetch_all, weights_of
from segmodels.models.registry import (
    COURSE_MODELS,
    MODELS,
    NAMED_BY,
    architecture,
    create_model,
    list_models,
    model_configs,
    model_label,
    naming_defaults,
)
from segmodels.models.smp_models import list_archs, list_encoders

__all__ = [
    "BACKBONES",
    "COURSE_MODELS",
    "MODELS",
    "NAMED_BY",
    "PretrainedWeightsUnavailable",
    "Weights",
    "architecture",
    "backbones",
    "create_model",
    "fetch_all",
    "get_backbone_spec",
    "list_archs",
    "list_backbones",
    "list_encoders",
    "list_models",
    "model_configs",
    "model_label",
    "model_size_mb",
    "naming_defaults",
    "parameter_count",
    "smp_models",
    "time_inference",
    "time_inference_runs",
    "weights_of",
]
