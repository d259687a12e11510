"""An exported model and its ``model.json``: pixels in, class ids out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.json"  # sweeps/storage.py's MODEL_FILE: the contract with the exporter
FORMAT = "segsweep-model"


class ModelError(ValueError):
    """A folder that holds no usable export; the message says why."""


class Predictor:
    """The exported ONNX model of ``folder`` on onnxruntime (CPU unless ``providers`` say)."""

    def __init__(self, folder: str | Path, threads: int = 0,
                 providers: list[str] | None = None):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.card = _read_card(self.folder)
        model = self.folder / self.card["model_file"]
        if self.card.get("export_format") != "onnx" or not model.is_file():
            raise ModelError(f"{self.folder}: needs an ONNX export (`segsweep export RUN "
                             f"--format onnx`); found {self.card.get('export_format')!r}")
        if not self.card.get("passed_check", False):
            raise ModelError(f"{model}: this export failed its check against PyTorch (see "
                             f"{self.folder / 'MODEL_CARD.md'}); export again")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), options,
                                            providers=providers or ["CPUExecutionProvider"])
        self.input = self.card["input"]["name"]
        self.output = self.card["output"]["name"]
        self.palette = np.array([c["color"] for c in self.card["classes"]], dtype=np.uint8)
        self.class_names = [c["name"] for c in self.card["classes"]]

    def logits(self, image: np.ndarray) -> np.ndarray:
        """(K, H, W) float32 logits of one (H, W, 3) uint8 RGB image."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        pixels = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        return self.session.run([self.output], {self.input: pixels})[0][0]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W) uint8 class ids."""
        return self.logits(image).argmax(0).astype(np.uint8)


def _read_card(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_FILE
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no {MODEL_FILE}; give the folder `segsweep export` "
                         "wrote (RUN/export/NAME)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if card.get("format") != FORMAT:
        raise ModelError(f"{path}: not a segsweep export description")
    return card


def overlay(image: np.ndarray, classes: np.ndarray, palette: np.ndarray,
            alpha: float = 0.5) -> np.ndarray:
    """The image with each pixel's class colour blended over it."""
    colours = palette[np.minimum(classes, len(palette) - 1)].astype(np.float32)
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)
