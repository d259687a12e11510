"""Where a trial keeps its decoded uint8 splits while it trains on a GPU.

A split goes to the GPU once when it takes at most ``DEVICE_SHARE`` of the GPU's free memory
(the course's 290 + 112 images at 1000x750 are 1.2 GB); otherwise it stays where it is, in
host memory, and the windows cut from it for each call are staged in pinned buffers and copied
over without blocking. On the host the tensors are views of the decoded arrays (Ray's
read-only object store): they are only ever read.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

DEVICE_SHARE = 0.25  # of the GPU memory this process may use; the rest is the model's
_process_share = 1.0  # this process's share of its GPU (cap_process_memory), like torch's cap


def cap_process_memory(share: float, device: torch.device | None = None) -> None:
    """Cap this process's GPU memory to ``share`` of the GPU (a trial sharing it with others):
    an out-of-memory then fails the trial that caused it, not its neighbour; data placement
    budgets within the same share."""
    global _process_share
    torch.cuda.set_per_process_memory_fraction(share, device)
    _process_share = share


def split_bytes(*arrays: list[np.ndarray]) -> int:
    return sum(a.nbytes for group in arrays for a in group)


def placement(nbytes: int, device: torch.device) -> torch.device:
    """``device`` when ``nbytes`` fit in ``DEVICE_SHARE`` of the GPU memory this process may
    still use (the free memory, within its capped share) (always on CPU), else the CPU (pinned
    memory, copied per batch)."""
    if device.type != "cuda":
        return device
    free, total = torch.cuda.mem_get_info(device)
    allowed = min(free, _process_share * total - torch.cuda.memory_reserved(device))
    return device if nbytes <= DEVICE_SHARE * allowed else torch.device("cpu")


def upload(arrays: list[np.ndarray], where: torch.device) -> list[torch.Tensor]:
    """One tensor per array on ``where``. On the host they are views of the arrays, never a
    second copy: the windows cut from them go through pinned buffers."""
    with warnings.catch_warnings():  # read-only arrays: the tensors are never written
        warnings.filterwarnings("ignore", ".*not writable.*")
        tensors = [torch.from_numpy(a) for a in arrays]
    return tensors if where.type == "cpu" else [t.to(where) for t in tensors]
