"""The zoo grid (the course's models against smp's), --pretrained for every grid, and losses
in a sweep: what the runner settles before Ray starts, each zoo model's contract, and one
end-to-end zoo sweep through the CLI (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import losses_on_a_fixed_batch

import segmodels
from segmodels.models.backbones import PretrainedWeightsUnavailable
from segmodels.training.config import TrialConfig, trial_settings
from segmodels.training.losses import class_weights
from sweeps.grids import GridError, load_grid
from sweeps.prepare import prepare
from sweeps.settings import SweepError, SweepSettings

ROOT = Path(__file__).resolve().parents[2]
ZOO = load_grid("zoo").by_label()


def _settings(tmp_path, data, **kw) -> SweepSettings:
    overrides = {"crop_size": 64, "batch_size": 4, **kw.pop("overrides", {})}
    return SweepSettings(grid=kw.pop("grid", "homework"), data=str(data), overrides=overrides,
                         storage=str(tmp_path / "runs"), **kw)


def _nothing_started(tmp_path) -> bool:
    import ray

    return not ray.is_initialized() and not (tmp_path / "runs").exists()


def test_pretrained_offline_is_one_error_naming_each_backbone_before_ray(offline, tmp_path,
                                                                         tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir, overrides={"pretrained": True})
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        prepare(settings)
    message = str(err.value)
    for backbone in ("resnet18", "vgg11_bn", "mobilenet_v3_small"):
        assert f"deeplab backbone {backbone}" in message
    assert "unet" not in message and "drop --pretrained" in message
    assert _nothing_started(tmp_path)


def test_pretrained_with_cached_weights_starts_the_homework_grid_unet_from_scratch(
        offline, tmp_path, tiny_dataset_dir):
    from segmodels.models.backbones import BACKBONES

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    folder.mkdir(parents=True)
    for spec in BACKBONES.values():
        (folder / os.path.basename(spec.weights.url)).write_bytes(b"fake weights")
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir,
                                        overrides={"pretrained": True}))
    assert prepared.from_scratch == ["unet/no-aug/pretrained=False", "unet/aug/pretrained=False"]
    for label in prepared.grid.labels:
        cfg = prepared.trial_config(label)
        assert cfg.pretrained is (cfg.model == "deeplab"), label
    assert offline == []  # the cache answered


def test_a_pair_smp_cannot_build_is_refused_before_any_download(offline, tmp_path,
                                                                tiny_dataset_dir):
    grid = tmp_path / "vgg.yaml"
    grid.write_text("axes:\n  model: [smp]\n  arch: [deeplabv3]\n  encoder: [vgg11_bn]\n")
    with pytest.raises(SweepError, match="grid point smp/deeplabv3/vgg11_bn/aug: smp cannot "
                                         "build architecture 'deeplabv3' with encoder 'vgg11_bn'"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid),
                                 overrides={"pretrained": True}))
    assert offline == [] and _nothing_started(tmp_path)


def test_an_unknown_encoder_is_refused_before_ray(tmp_path, tiny_dataset_dir):
    grid = tmp_path / "typo.yaml"
    grid.write_text("axes:\n  model: [smp]\n  encoder: [resnet35]\n")
    with pytest.raises(GridError, match="axes.encoder = 'resnet35' is not valid"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid)))
    assert _nothing_started(tmp_path)


def test_class_weights_are_computed_once_per_sweep_from_the_training_split(tmp_path,
                                                                          tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid="losses"))
    expected = class_weights(prepared.data.train.masks, len(prepared.data.class_names))
    assert prepared.fixed["class_weights"] == expected
    weighted = prepared.trial_config("smp/unet/resnet34/aug/loss=weighted_ce")
    assert weighted.class_weights == expected
    homework = prepare(_settings(tmp_path, tiny_dataset_dir))
    assert "class_weights" not in homework.fixed  # no point needs them


def _build(label: str) -> torch.nn.Module:
    cfg = TrialConfig.from_dict(trial_settings({}, ZOO[label]))
    return segmodels.create_model(cfg.model, **cfg.model_args())


@pytest.mark.parametrize("label", [label for label in ZOO if label.startswith("smp/")])
def test_every_smp_zoo_model_gives_logits_of_a_300x400_input_size(label):
    # the course's: tests/segmodels/models/test_models.py::test_logits_have_input_size
    with torch.no_grad():
        assert _build(label).eval()(torch.randn(1, 3, 300, 400)).shape == (1, 8, 300, 400)


@pytest.mark.slow
@pytest.mark.parametrize("label", list(ZOO))
def test_every_zoo_model_gives_logits_of_a_750x1000_frame(label):
    with torch.no_grad():
        assert _build(label).eval()(torch.randn(1, 3, 750, 1000)).shape == (1, 8, 750, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("label", [label for label in ZOO if label.startswith("smp/")])
def test_every_smp_zoo_model_reduces_the_loss_on_a_fixed_batch(label):
    # the course's: tests/segmodels/models/test_models.py::test_training_steps_reduce_loss_...
    torch.manual_seed(0)
    losses = losses_on_a_fixed_batch(_build(label), batch=2, steps=6)
    assert np.isfinite(losses).all() and sum(losses[-2:]) < sum(losses[:2]), losses


@pytest.mark.slow
def test_the_zoo_sweep_ranks_every_trial_and_an_smp_checkpoint_reloads(tmp_path,
                                                                       tiny_dataset_dir):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tune_app.py"), "--grid", "zoo", "--epochs", "1",
         "--crop-size", "64", "--batch-size", "2", "--inference-repeats", "1",
         "--inference-size", "64x48", "--no-dashboard",
         "--data", str(tiny_dataset_dir), "--storage", str(tmp_path), "--num-cpus", "2"],
        cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True,
        text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from analysis.loading import load_experiment

    exp = load_experiment(tmp_path / "zoo")
    ranked = exp.trials.dropna(subset=["best_val_miou"])
    assert sorted(ranked["label"]) == sorted(ZOO)
    rankings = (tmp_path / "zoo" / "report" / "rankings.csv").read_text()
    assert all(label in rankings for label in ZOO)
    smp = ranked[ranked["label"] == "smp/fpn/resnet34/aug"].iloc[0]
    model, state = segmodels.model_from_checkpoint(smp["best_checkpoint"])
    assert state["config"]["arch"] == "fpn" and type(model).__name__ == "SmpModel"
    timings = json.loads((tmp_path / "zoo" / "inference_cpu.json").read_text())
    assert set(timings) == set(ZOO)
    # smp's UNet and SegFormer leave the sweep as checked ONNX models (segsweep export)
    from deploy import export_run

    for label in ("smp/unet/resnet34/aug", "smp/segformer/mit_b0/aug"):
        exported = export_run(tmp_path / "zoo", trial=label, check_images=2, repeats=1)
        assert exported.check.passed and exported.model_file.name == "model.onnx", label
