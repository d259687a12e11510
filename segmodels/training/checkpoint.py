"""Trial checkpoints: a plain dict of tensors and Python values, loaded with
``torch.load(weights_only=True)`` so a checkpoint file can never execute code.

A checkpoint carries its ``TrialConfig`` so it alone rebuilds its model. torch loads when a
checkpoint is written or read: the file names here are read without it (the storage contract,
the CLI).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

from segmodels.classes import NUM_CLASSES
from segmodels.errors import SegsweepError

FORMAT = "segsweep-checkpoint"
VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
# Beside a checkpoint: the (N, K, K) per-image confusion counts of its epoch's validation, in
# the split's image order. A trial hands them to its reporter under IMAGE_CONFUSIONS, in the
# checkpoint dict, and the reporter writes them here: small (112 images x 8 x 8 counts is 57
# kB), readable without torch, and copied with the checkpoint's folder wherever it goes.
IMAGE_CONFUSIONS = "image_confusions"
IMAGE_CONFUSIONS_FILE = "image_confusions.npy"


class CheckpointError(SegsweepError, ValueError):
    """A file that is not a readable segsweep checkpoint; the message names it."""


def _write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write through a temporary file and rename it, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
    return path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half-written checkpoint."""
    import torch

    return _write_atomically(path, lambda f: torch.save(
        {"format": FORMAT, "version": VERSION, **state}, f))


# What torch.save's zip format adds per tensor (headers, name, 64-byte alignment): measured
# 284-308 bytes on the UNet's 182-310 tensors, so it matters only for tiny models.
TENSOR_RECORD_BYTES = 300


def checkpoint_bytes(model: nn.Module, optimizer: str) -> int:
    """What one trial checkpoint of ``model`` takes on disk, without writing it: the weights
    and buffers, plus the optimizer's state for every trainable parameter (a resume needs it).
    Works on a model built on the meta device, so a sweep can check its disk before training."""
    from segmodels.training.optim import state_tensors

    copies, per_param = state_tensors(optimizer)
    state = model.state_dict().values()
    trainable = [p for p in model.parameters() if p.requires_grad]
    data = (sum(t.numel() * t.element_size() for t in state)
            + copies * sum(p.numel() * p.element_size() for p in trainable))
    return data + TENSOR_RECORD_BYTES * (len(state) + per_param * len(trainable))


def save_image_confusions(path: str | Path, image_cms: np.ndarray) -> Path:
    """Write (N, K, K) per-image confusion counts atomically, as ``save_checkpoint`` does."""
    return _write_atomically(path, lambda f: np.save(f, np.asarray(image_cms, dtype=np.int64)))


def load_image_confusions(path: str | Path) -> np.ndarray | None:
    """The (N, K, K) counts ``save_image_confusions`` wrote; None when the file is missing or
    damaged (a sweep stored before trials kept them: its intervals are unavailable)."""
    try:
        cms = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, damaged, or empty
        return None
    return cms if cms.ndim == 3 and cms.shape[1] == cms.shape[2] else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise CheckpointError(
            f"{path}: not a readable segsweep checkpoint ({type(exc).__name__}: {reason}); "
            "it may be truncated (disk full, interrupted copy) or not a checkpoint at all. "
            "Only files written by segsweep load; arbitrary pickles are refused."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a segsweep checkpoint (no '{FORMAT}' marker)")
    return state


def model_from_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the trained model from a checkpoint alone; returns (model in eval mode, state)."""
    from segmodels.models import create_model
    from segmodels.training.config import TrialConfig

    state = load_checkpoint(path, map_location)
    cfg = TrialConfig.from_dict(state["config"])
    # Weights come from the checkpoint: never download ImageNet weights to be overwritten.
    args = {**cfg.model_args(), "pretrained": None}
    model = create_model(cfg.model, num_classes=state.get("num_classes", NUM_CLASSES), **args)
    model.load_state_dict(state["model"])
    return model.eval(), state
