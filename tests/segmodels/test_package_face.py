"""What code written against ``import segmodels`` relies on keeps working as the package grows."""

import importlib

import pytest

import segmodels

# Every name ``segmodels`` exported before it was split into the data, models and training
# wings: user code and notebooks import these from the package face.
EXPORTED_BEFORE_THE_WINGS = (
    "CLASS_NAMES", "NUM_CLASSES", "CheckpointError", "ConfigError", "DatasetError",
    "PretrainedWeightsUnavailable", "SegmentationData", "SegsweepError", "TrialConfig",
    "create_model", "list_backbones", "list_models", "load_checkpoint", "load_dataset", "metrics",
    "model_configs", "model_from_checkpoint", "model_label", "model_size_mb", "parameter_count",
    "validate_dataset",
)


@pytest.mark.parametrize("name", EXPORTED_BEFORE_THE_WINGS)
def test_every_name_the_package_exported_still_imports_from_it(name):
    namespace: dict = {}
    exec(f"from segmodels import {name}", namespace)
    assert namespace[name] is getattr(segmodels, name)
    assert name in segmodels.__all__


@pytest.mark.parametrize("wing", ["segmodels.data", "segmodels.models", "segmodels.training"])
def test_each_wing_face_exports_what_it_lists(wing):
    face = importlib.import_module(wing)
    assert face.__doc__ and face.__all__
    assert [name for name in face.__all__ if not hasattr(face, name)] == []


def test_reading_configurations_does_not_import_lightning():
    """The training face loads Lightning only for the names that need it (the trial loop), so
    the CLI's checks and the analysis of a stored sweep start without it."""
    import subprocess
    import sys

    probe = ("import sys, segmodels, segmodels.training; segmodels.training.TrialConfig; "
             "print('lightning' in sys.modules or 'pytorch_lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    probe = ("import sys, segmodels.training as t; t.train_trial; "
             "print('pytorch_lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
