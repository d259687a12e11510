"""What --pretrained means per model, and the check that its weights can be had, offline: the
network is blocked and fake weights are put in temporary caches."""

import os
import time

import pytest
import torch

from segmodels.models.backbones import BACKBONES, PretrainedWeightsUnavailable
from segmodels.models.pretrained import fetch_all, weights_of
from segmodels.training.config import TrialConfig


def put_torchvision_file(backbone: str) -> None:
    """A (fake) file where torch.hub looks for the backbone's ImageNet weights."""
    url = BACKBONES[backbone].weights.url
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, os.path.basename(url)), "wb") as f:
        f.write(b"fake weights")


def put_hf_file(repo: str, filename: str, revision: str) -> None:
    from huggingface_hub import constants

    snapshot = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"),
                            "snapshots", revision)
    os.makedirs(snapshot, exist_ok=True)
    with open(os.path.join(snapshot, filename), "wb") as f:
        f.write(b"fake")


def _cfg(**kw) -> TrialConfig:
    return TrialConfig.from_dict({"pretrained": True, **kw})


def _weights(cfg: TrialConfig):
    return weights_of(cfg.model, **cfg.model_args())


def test_what_pretrained_means_for_each_model():
    assert _weights(_cfg(model="unet")) is None  # the course's UNet has none
    assert "torchvision ResNet18_Weights.IMAGENET1K_V1" in _weights(
        _cfg(model="deeplab")).what  # DeepLab's default backbone
    assert "smp-hub/resnet34.imagenet" in _weights(_cfg(model="smp")).what
    assert "smp-hub/mit_b0.imagenet" in _weights(_cfg(model="smp", encoder="mit_b0")).what
    assert "(timm)" in _weights(_cfg(model="smp", encoder="tu-resnet18")).what
    assert _weights(_cfg(model="smp", encoder="tu-darknet17")) is None  # timm: untrained


def test_offline_every_missing_set_is_named_in_one_error_and_quickly(offline):
    configs = [_cfg(model="deeplab", backbone="vgg11_bn"), _cfg(model="smp"),
               _cfg(model="smp", encoder="mit_b0"), _cfg(model="smp")]  # resnet34 twice
    weights = [_weights(c) for c in configs]  # first imports of smp/timm: not the timed part
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        fetch_all(weights)
    assert time.perf_counter() - start < 15  # no retry loops while offline
    message = str(err.value)
    assert message.startswith("--pretrained: 3 set(s)")
    for name in ("backbone vgg11_bn", "encoder resnet34", "encoder mit_b0"):
        assert name in message
    assert "hub/checkpoints" in message and "huggingface/hub" in message
    assert "drop --pretrained" in message
    assert offline  # the network was tried, and blocked


def test_cached_weights_pass_without_the_network(offline):
    import segmentation_models_pytorch as smp

    put_torchvision_file("resnet18")
    source = smp.encoders.encoders["resnet34"]["pretrained_settings"]["imagenet"]
    for filename in ("config.json", "model.safetensors"):
        put_hf_file(source["repo_id"], filename, source["revision"])
    fetch_all(_weights(c) for c in (_cfg(model="deeplab"), _cfg(model="smp")))
    assert offline == []  # the caches answered
