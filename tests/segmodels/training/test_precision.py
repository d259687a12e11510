"""precision: what precision=auto and memory_format=auto resolve to on each device."""

from __future__ import annotations

import pytest
import torch

from segmodels.training.config import TrialConfig
from segmodels.training.precision import (
    FP32_ON_GPU,
    resolve_memory_format,
    resolve_precision,
)


@pytest.mark.parametrize("capability, expected", [
    ((7, 0), "16-mixed"),  # V100: bf16 only emulated, fp16 tensor cores
    ((7, 5), "16-mixed"),  # T4
    ((8, 0), "bf16-mixed"),  # A100
    ((9, 0), "bf16-mixed"),  # H100/H200
])
def test_auto_precision_follows_the_gpus_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a: True)  # what T4/V100 say
    assert resolve_precision("auto", "gpu", "unet") == expected


def test_auto_precision_is_fp32_on_cpu_and_explicit_choices_are_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda *a: pytest.fail("no GPU is queried for a CPU trial"))
    assert resolve_precision("auto", "cpu", "unet") == "32-true"
    assert resolve_precision("16-mixed", "cpu") == "32-true"  # no AMP on CPU
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"
    assert resolve_precision("bf16-mixed", "gpu", "deeplab/mobilenet_v3_small/aspp") == \
        "bf16-mixed"


def test_architectures_measured_slower_in_mixed_precision_train_in_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert "deeplab/mobilenet_v3_small/aspp" in FP32_ON_GPU
    for arch in FP32_ON_GPU:
        assert resolve_precision("auto", "gpu", arch) == "32-true"
    assert resolve_precision("auto", "gpu", "deeplab/resnet18/aspp") == "bf16-mixed"


def test_the_exception_matches_however_a_point_spells_the_architecture():
    spelled = [{"model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": True},
               {"model": "deeplab", "backbone": "mobilenet_v3_small"}]  # aspp: the default
    for point in spelled:
        assert TrialConfig.from_dict(point).architecture == "deeplab/mobilenet_v3_small/aspp"
    assert TrialConfig.from_dict({"model": "deeplab"}).architecture == "deeplab/resnet18/aspp"
    assert TrialConfig.from_dict({"model": "unet"}).architecture == "unet"


def test_memory_format_is_channels_last_on_cuda_and_contiguous_on_cpu_by_default():
    assert resolve_memory_format("auto", "gpu") == torch.channels_last
    assert resolve_memory_format("auto", "cpu") == torch.contiguous_format
    assert resolve_memory_format("channels_last", "cpu") == torch.channels_last
    with pytest.raises(ValueError, match="memory_format"):
        TrialConfig.from_dict({"memory_format": "nchw"})
