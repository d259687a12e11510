import urllib.error

import pytest
import torch
from model_helpers import losses_on_a_fixed_batch

import segmodels
from segmodels.models import backbones
from segmodels.models.registry import model_label

CONFIGS = segmodels.model_configs()
IDS = [model_label(**c) for c in CONFIGS]


def _build(config, **extra):
    config = dict(config)
    return segmodels.create_model(config.pop("model"), **config, **extra)


def test_registry_covers_the_seven_course_configurations():
    assert len(CONFIGS) == 7  # smp is registered, and enters only grids that name it
    assert segmodels.list_models() == ["deeplab", "smp", "unet"]
    assert set(segmodels.list_backbones()) == {"resnet18", "vgg11_bn", "mobilenet_v3_small"}


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_logits_have_input_size(config):
    model = _build(config).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 300, 400)).shape == (1, 8, 300, 400)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_training_steps_reduce_loss_on_a_fixed_batch(config):
    torch.manual_seed(0)
    losses = losses_on_a_fixed_batch(_build(config), batch=4, steps=8)
    assert sum(losses[-2:]) < sum(losses[:2])  # pairs smooth out dropout noise


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (100, 7)])
def test_unet_accepts_sides_not_divisible_by_16(size):
    model = segmodels.create_model("unet", min_channels=4, max_channels=16).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 8, *size)


def test_unet_structure_follows_the_course():
    model = segmodels.create_model("unet")
    ups = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == 4
    assert all(
        u.kernel_size == (3, 3)
        and u.stride == (2, 2)
        and u.padding == (1, 1)
        and u.output_padding == (1, 1)
        for u in ups
    )
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.modules()) == 4
    assert max(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)) == 512


def test_aspp_has_the_course_branches():
    model = segmodels.create_model("deeplab", backbone="resnet18", aspp=True)
    dilations = sorted(
        m.dilation[0]
        for m in model.aspp.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    )
    assert dilations == [12, 24, 36]
    assert model.aspp.project[0].out_channels == 512  # back to the backbone's channels
    assert isinstance(segmodels.create_model("deeplab", aspp=False).aspp, torch.nn.Identity)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="deeplab, smp, unet"):
        segmodels.create_model("segformer")
    with pytest.raises(ValueError, match="mobilenet_v3_small, resnet18, vgg11_bn"):
        segmodels.create_model("deeplab", backbone="resnet50")
    with pytest.raises(ValueError, match="does not take backbone"):
        segmodels.create_model("unet", backbone="resnet18")
    with pytest.raises(ValueError, match="'smp' does not take aspp"):
        segmodels.create_model("smp", aspp=True)


def test_none_options_keep_the_model_defaults():
    model = segmodels.create_model("deeplab", backbone=None, aspp=None)
    assert not isinstance(model.aspp, torch.nn.Identity)  # DeepLab's default: ASPP on


def test_dilation_is_checked_against_the_backbone():
    with pytest.raises(ValueError, match="vgg11_bn.*does not support dilated"):
        backbones.build_backbone("vgg11_bn", dilated=True)
    model = segmodels.create_model(
        "deeplab", backbone="mobilenet_v3_small", output_stride=16
    ).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 8, 64, 64)


@pytest.mark.parametrize("model, options", [
    ("deeplab", {"backbone": "mobilenet_v3_small", "aspp": False}),
    ("smp", {"arch": "segformer", "encoder": "mit_b0"}),
])
def test_model_size_matches_lightning_summary(model, options):
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.model_summary import ModelSummary

    class Wrapper(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = segmodels.create_model(model, **options)

    wrapper = Wrapper()
    summary = ModelSummary(wrapper)
    assert segmodels.model_size_mb(wrapper.net) == pytest.approx(summary.model_size)
    assert segmodels.parameter_count(wrapper.net) == summary.total_parameters


def test_pretrained_weights_offline_fail_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(segmodels.PretrainedWeightsUnavailable) as err:
        segmodels.create_model("deeplab", backbone="resnet18", pretrained=True)
    message = str(err.value)
    assert "pretrained=False" in message and "hub/checkpoints" in message


def test_backbone_batchnorm_momentum_is_pytorchs_default():
    model = segmodels.create_model("deeplab", backbone="mobilenet_v3_small")
    momenta = {m.momentum for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
