"""The label set every model, metric and report uses: FloodNet's 8 classes, by class id."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "background", "building", "road", "water", "tree", "vehicle", "pool", "grass",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 255  # a mask value for "unlabelled": the loss and the metrics skip these pixels
