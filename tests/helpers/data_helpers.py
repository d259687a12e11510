"""Tiny datasets written on the fly for the data tests: known arrays, so decoding can be
checked against the truth."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from segmodels.data import load_dataset

H, W = 40, 56
TRAIN_NAMES = ("img_2", "img_0", "img_1")  # written out of order: loading must sort them
TEST_NAMES = ("val_1", "val_0")


def rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def labels(seed: int, h: int = H, w: int = W, n: int = 8) -> np.ndarray:
    return np.random.default_rng(1000 + seed).integers(0, n, (h, w), dtype=np.uint8)


def write_jpeg(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95)
    return path


def write_mask(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)  # uint8 2-D -> 'L', (H, W, 3) -> 'RGB'
    return path


def make_tiny(root: Path) -> Path:
    """tiny-floodnet layout: 3 train + 2 test images of 40x56, JPEG + 'L' PNG masks."""
    for split, names in (("train", TRAIN_NAMES), ("test", TEST_NAMES)):
        for name in names:
            seed = int(name[-1]) + (0 if split == "train" else 10)
            write_jpeg(root / split / "image" / f"{name}.jpg", rgb(seed))
            write_mask(root / split / "mask" / f"{name}.png", labels(seed))
    return root


def make_floodnet(root: Path, masks: dict[str, np.ndarray] | None = None) -> Path:
    """Original FloodNet layout: SPLIT/SPLIT-org-img/NAME.jpg + SPLIT-label-img/NAME_lab.png."""
    masks = masks or {}
    for split, names in (("train", ("6467", "6468")), ("val", ("7001",))):
        for i, name in enumerate(names):
            picture = rgb(i) if split == "train" else rgb(i + 2)  # never a training image
            write_jpeg(root / split / f"{split}-org-img" / f"{name}.jpg", picture)
            mask = masks.get(name, labels(i, n=10))
            write_mask(root / split / f"{split}-label-img" / f"{name}_lab.png", mask)
    return root


def load_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(root, **kwargs)
