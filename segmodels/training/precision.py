"""A trial's numerics and kernels: precision and memory format (cuDNN autotuning, Lightning's
``benchmark``, is on in every trial that trains on CUDA: ``segmodels.training.trial``).

``precision=auto`` is bf16 AMP on GPUs with native bf16 (compute capability >= 8.0: Ampere,
Ada, Hopper), fp16 AMP with loss scaling on older GPUs (T4, V100: ``torch.cuda.
is_bf16_supported()`` answers True there by emulation, without tensor cores for it), and fp32
on CPU. Architectures that the GPU benchmark measured slower under mixed precision train in
fp32 on the GPU (``FP32_ON_GPU``); an explicit ``precision`` is always honoured.
"""

from __future__ import annotations

import torch

# Architecture label -> why it trains in fp32 on a GPU under precision=auto.
FP32_ON_GPU: dict[str, str] = {
    "deeplab/mobilenet_v3_small/aspp": (
        "measured slower in bf16 than in fp32, training and inference, on an H200 "
        "(bench/README.md, GPU): depthwise convolutions gain nothing from mixed precision"
    ),
}


def resolve_precision(precision: str, accelerator: str, arch: str = "") -> str:
    """Lightning's ``precision`` for a trial: see the module docstring."""
    if precision != "auto":
        return precision if accelerator == "gpu" or precision == "32" else "32-true"
    if accelerator != "gpu" or arch in FP32_ON_GPU:
        return "32-true"
    major, _ = torch.cuda.get_device_capability()
    return "bf16-mixed" if major >= 8 else "16-mixed"


def resolve_memory_format(memory_format: str, accelerator: str) -> torch.memory_format:
    """'auto' is channels_last on CUDA, where convolutions (tensor cores, cuDNN) run faster in
    it; on CPU it sped up MobileNetV3 but not ResNet18 (bench/inference.py), so contiguous."""
    if memory_format == "auto":
        memory_format = "channels_last" if accelerator == "gpu" else "contiguous"
    return torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
