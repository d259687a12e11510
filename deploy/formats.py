"""Export formats, one registry: how a trained model is written and how the written file runs.

What is exported is ``Deployable``: (N, 3, H, W) float32 RGB pixels in 0-255, as an image file
holds them, to (N, K, H, W) logits. The ImageNet normalization every model trained with is part
of the graph, so a deployment cannot get it wrong. Height and width are dynamic for every
model of the named grids (the course's UNet rounds its sizes in tensor ops when traced,
``segmodels.models.unet``), and so is the batch.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segmodels.training import normalize_tensor

# The traced example's size: not a multiple of 32, so a size-dependent branch cannot hide.
TRACE_HEIGHT, TRACE_WIDTH = 120, 168
ONNX_OPSET = 18
INPUT, OUTPUT = "image", "logits"
Runner = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 pixels -> logits


class Deployable(nn.Module):
    """RGB pixels 0-255 -> logits: the model with its input normalization inside."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(normalize_tensor(pixels / 255.0))


def _example() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, TRACE_HEIGHT, TRACE_WIDTH, generator=generator) * 255


def export_onnx(model: nn.Module, path: Path) -> Path:
    """ONNX with dynamic batch, height and width, through torch's TorchScript-based exporter:
    the dynamo exporter cannot export smp's SegFormer, and both give the same graphs for the
    others (checked to 1e-7 on every homework model)."""
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(Deployable(model), (_example(),), str(path), input_names=[INPUT],
                          output_names=[OUTPUT], dynamic_axes={INPUT: axes, OUTPUT: axes},
                          opset_version=ONNX_OPSET, dynamo=False)
    return path


def run_onnx(path: Path, threads: int = 1, providers: list[str] | None = None) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options,
                                   providers=providers or ["CPUExecutionProvider"])
    return lambda pixels: session.run([OUTPUT], {INPUT: pixels})[0]


def export_torchscript(model: nn.Module, path: Path) -> Path:
    """TorchScript by tracing (``torch.jit.load`` runs it without segsweep's code)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Deployable(model), (_example(),), check_trace=False)
    traced.save(str(path))
    return path


def run_torchscript(path: Path, threads: int = 1, providers: list[str] | None = None) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        return _on_cpu(torch.jit.load(str(path), map_location="cpu").eval(), threads)


def _on_cpu(module: nn.Module, threads: int) -> Runner:
    """A torch module as a Runner, on ``threads`` CPU threads, without autograd."""

    def run(pixels: np.ndarray) -> np.ndarray:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return module(torch.from_numpy(pixels)).numpy()
        finally:
            torch.set_num_threads(previous)

    return run


@dataclass(frozen=True)
class Format:
    file: str  # the model file's name in the export folder
    write: Callable[[nn.Module, Path], Path]
    run: Callable[..., Runner]
    runtime: str  # what runs it, for the card


FORMATS: dict[str, Format] = {
    "onnx": Format("model.onnx", export_onnx, run_onnx, "onnxruntime"),
    "torchscript": Format("model.ts", export_torchscript, run_torchscript, "torch.jit"),
}


def run_pytorch(model: nn.Module, threads: int = 1) -> Runner:
    """The reference: the trained model, eager, on the CPU."""
    return _on_cpu(Deployable(model), threads)


def pixels(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32, what ``Deployable`` takes."""
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def cuda_runners(model: nn.Module, path: Path) -> dict[str, Runner]:
    """onnxruntime's CUDA provider and eager PyTorch on CUDA, both from host pixels to host
    logits (the copies a deployment pays), where a GPU and onnxruntime-gpu exist; else {}."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in \
            ort.get_available_providers():
        return {}
    on_gpu = Deployable(copy.deepcopy(model)).cuda().eval()  # the CPU model stays as it is

    def pytorch_cuda(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return on_gpu(torch.from_numpy(pixels).cuda()).cpu().numpy()

    return {"onnxruntime-cuda": run_onnx(path, providers=["CUDAExecutionProvider"]),
            "pytorch-cuda": pytorch_cuda}

