"""The class colour map shared by TensorBoard images, analysis crops and legends."""

from __future__ import annotations

import numpy as np

# background, building, road, water, tree, vehicle, pool, grass (the course's colours)
PALETTE = np.array(
    [
        [0, 0, 0],
        [0, 0, 255],
        [0, 255, 0],
        [0, 255, 255],
        [255, 0, 0],
        [255, 0, 255],
        [255, 255, 0],
        [255, 255, 255],
    ],
    dtype=np.uint8,
)
IGNORE_COLOR = np.array([128, 128, 128], dtype=np.uint8)


def colorize(mask: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8; ids outside the palette (ignored pixels) are grey."""
    out = np.empty((*mask.shape, 3), dtype=np.uint8)
    out[:] = IGNORE_COLOR
    valid = mask < len(PALETTE)
    out[valid] = PALETTE[mask[valid]]
    return out


def side_by_side(image: np.ndarray, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """image | prediction | ground truth as one (H, 3W, 3) uint8 strip."""
    return np.concatenate([image, colorize(pred), colorize(target)], axis=1)
