"""smp's models through segsweep's registry: names, any input size by pad-and-crop, weights,
checkpoints. Every zoo model's shapes and training steps: tests/e2e/test_zoo_sweep.py."""

import socket

import pytest
import torch

import segmodels
from segmodels.errors import ConfigError
from segmodels.training.checkpoint import save_checkpoint
from segmodels.training.config import TrialConfig

SMALL = {"arch": "fpn", "encoder": "resnet18"}  # a light model with smp's usual stride 32


def _inner_calls(model):
    """Record what smp's own network receives and returns inside the wrapper."""
    seen = {}
    model.net.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    return seen


def test_a_750x1000_frame_is_zero_padded_to_768x1024_and_its_logits_cropped_back():
    model = segmodels.create_model("smp", **SMALL).eval()
    seen = _inner_calls(model)
    x = torch.randn(1, 3, 750, 1000)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 8, 750, 1000)
    padded = seen["x"]
    assert padded.shape == (1, 3, 768, 1024)  # padded, not resized
    assert torch.equal(padded[..., :750, :1000], x)
    assert not padded[..., 750:, :].any() and not padded[..., 1000:].any()
    assert torch.equal(logits, seen["out"][..., :750, :1000])


def test_sides_the_encoder_divides_are_not_padded_and_a_dilated_one_pads_to_16():
    model = segmodels.create_model("smp", **SMALL).eval()
    seen = _inner_calls(model)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 96))
    assert seen["x"].shape == (1, 3, 64, 96)
    deeplab = segmodels.create_model("smp", arch="deeplabv3plus", encoder="resnet18").eval()
    seen = _inner_calls(deeplab)
    with torch.no_grad():
        assert deeplab(torch.randn(1, 3, 100, 70)).shape == (1, 8, 100, 70)
    assert deeplab.divisor == 16 and seen["x"].shape == (1, 3, 112, 80)


def test_unknown_names_list_smps_own_and_say_how_to_find_timms():
    with pytest.raises(ConfigError, match="unknown smp architecture 'unet3'.*deeplabv3plus.*"
                                          "segformer"):
        segmodels.create_model("smp", arch="unet3")
    with pytest.raises(ConfigError, match="unknown smp encoder 'resnet35'.*mit_b0.*resnet34.*"
                                          "tu-NAME.*timm.list_models"):
        segmodels.create_model("smp", encoder="resnet35")
    with pytest.raises(ConfigError, match="encoder = 'tu-no_such_net' is not valid.*tu-NAME"):
        TrialConfig.from_dict({"model": "smp", "encoder": "tu-no_such_net"})
    assert TrialConfig.from_dict({"model": "smp", "encoder": "tu-resnet18"}).encoder


def test_a_pair_smp_cannot_build_is_one_error_naming_both():
    with pytest.raises(ConfigError, match="smp cannot build architecture 'deeplabv3' with "
                                          "encoder 'vgg11_bn': 'VGG' models do not support"):
        with torch.device("meta"):
            segmodels.create_model("smp", arch="deeplabv3", encoder="vgg11_bn")


def test_timm_encoders_build_through_tu():
    model = segmodels.create_model("smp", arch="unet", encoder="tu-resnet10t").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 50, 70)).shape == (1, 8, 50, 70)


def test_a_checkpoint_rebuilds_the_smp_model_from_its_config(tmp_path):
    cfg = TrialConfig.from_dict({"model": "smp", **SMALL})
    model = segmodels.create_model("smp", **SMALL).eval()
    save_checkpoint(tmp_path / "checkpoint.pt", {"config": cfg.to_dict(), "num_classes": 8,
                                                 "model": model.state_dict()})
    rebuilt, state = segmodels.model_from_checkpoint(tmp_path)
    x = torch.randn(1, 3, 40, 60)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    assert state["config"]["arch"] == "fpn"


def _block_network(monkeypatch):
    def blocked(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)


def _hf_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no retries while blocked
    return cache


def put_smp_weights(cache, encoder: str, state: dict[str, torch.Tensor]) -> None:
    """Weights where smp's hf_hub_download finds them: the Hub cache's snapshot folder."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    source = smp.encoders.encoders[encoder]["pretrained_settings"]["imagenet"]
    repo = "models--" + source["repo_id"].replace("/", "--")
    snapshot = cache / repo / "snapshots" / source["revision"]
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"mean": [0.485, 0.456, 0.406], '
                                          '"std": [0.229, 0.224, 0.225]}')
    save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "model.safetensors")


def test_pretrained_encoder_weights_load_from_the_cache_offline(monkeypatch, tmp_path):
    cache = _hf_cache(monkeypatch, tmp_path)
    _block_network(monkeypatch)
    torch.manual_seed(1)
    donor = segmodels.create_model("smp", arch="fpn", encoder="mobilenet_v2")
    put_smp_weights(cache, "mobilenet_v2", donor.net.encoder.state_dict())
    model = segmodels.create_model("smp", arch="fpn", encoder="mobilenet_v2", pretrained=True)
    loaded = model.net.encoder.state_dict()
    for key, value in donor.net.encoder.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_pretrained_encoder_weights_offline_and_not_cached_fail_with_advice(monkeypatch,
                                                                           tmp_path):
    _hf_cache(monkeypatch, tmp_path)
    _block_network(monkeypatch)
    with pytest.raises(segmodels.PretrainedWeightsUnavailable) as err:
        segmodels.create_model("smp", arch="fpn", encoder="mobilenet_v2", pretrained=True)
    message = str(err.value)
    assert "smp encoder 'mobilenet_v2'" in message and "huggingface/hub" in message
    assert "pretrained=False" in message
