"""A trial's settings are merged in one place: every site that resolves them agrees."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from segmodels.errors import ConfigError, SegsweepError
from segmodels.training.config import TrialConfig, check_value, parse_value, trial_settings

ROOT = Path(__file__).resolve().parents[3]
MERGE_SITES = ("sweeps/prepare.py", "sweeps/trainable.py", "sweeps/inference_pass.py",
               "analysis/loading.py")

FIXED = {"epochs": 3, "lr": 0.01, "crop_size": 64}
POINT = {"model": "unet", "augment": False, "epochs": 4}
SEARCHED = {"lr": 0.005, "crop_size": 128}


def test_later_sources_win():
    merged = trial_settings(FIXED, POINT, SEARCHED, defaults={"epochs": 50, "seed": 7})
    assert merged == {"epochs": 4, "lr": 0.005, "crop_size": 128, "model": "unet",
                      "augment": False, "seed": 7}


def test_every_site_resolves_the_same_settings():
    from analysis.loading import _resolve_config
    from sweeps.grids import Grid, point_label
    from sweeps.prepare import PreparedSweep
    from sweeps.settings import SweepSettings
    from sweeps.trainable import resolve_trial_config

    label = point_label(POINT)
    expected = trial_settings(FIXED, POINT, SEARCHED)
    assert resolve_trial_config({"point": label, **SEARCHED}, {label: POINT}, FIXED) == expected
    meta = {"points": {label: POINT}, "fixed": FIXED, "trial_defaults": TrialConfig().to_dict()}
    assert _resolve_config(meta, {"point": label, **SEARCHED}) == {**TrialConfig().to_dict(),
                                                                   **expected}
    prepared = PreparedSweep(SweepSettings(), Grid("g", [POINT]), FIXED, data=None)
    assert prepared.trial_config(label, SEARCHED) == TrialConfig.from_dict(expected)


@pytest.mark.parametrize("module", MERGE_SITES)
def test_merge_sites_call_the_one_merge(module):
    tree = ast.parse((ROOT / module).read_text())
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "trial_settings" in calls, f"{module} resolves trial settings without trial_settings"


@pytest.mark.parametrize("key, text, value", [
    ("epochs", "2", 2), ("lr", "3e-4", 3e-4), ("precision", "32", "32"),
    ("augment", "false", False), ("backbone", "none", None), ("num_workers", "null", None),
])
def test_command_line_text_becomes_the_declared_type(key, text, value):
    assert parse_value(key, text) == value and type(parse_value(key, text)) is type(value)


@pytest.mark.parametrize("key, value, message", [
    ("epochs", "two", "epochs = 'two' has the wrong type; expected int"),
    ("epochs", True, "wrong type"),  # a YAML boolean is not a count
    ("optimizer", "lamb", "optimizer = 'lamb' is not valid; valid values: adam, adamw, sgd"),
    ("model", "segformer", "valid values: deeplab, smp, unet"),
    ("colour", "red", "unknown key 'colour'; valid keys:"),
])
def test_bad_values_are_one_config_error(key, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        check_value(key, value)
    assert isinstance(info.value, SegsweepError) and isinstance(info.value, ValueError)


def test_from_dict_checks_types_and_choices():
    with pytest.raises(ConfigError, match="lr_scheduler = 'linear' is not valid"):
        TrialConfig.from_dict({"lr_scheduler": "linear"})
    with pytest.raises(ConfigError, match="unknown trial config key.*learning_rate"):
        TrialConfig.from_dict({"learning_rate": 0.1})
    assert TrialConfig.from_dict({"backbone": None, "lr": 1}).lr == 1
