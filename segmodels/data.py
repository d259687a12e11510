"""Finding, validating and decoding a segmentation dataset, once.

Two on-disk layouts are understood (``LAYOUTS``):

- ``tiny-floodnet``: ``ROOT/{train,test}/image/NAME.jpg`` + ``ROOT/{train,test}/mask/NAME.png``,
  mask pixel = class id 0..7; ``test`` is the validation split.
- ``floodnet``: the original FloodNet release, ``[ROOT/SPLIT/]SPLIT-org-img/NAME.jpg`` +
  ``[ROOT/SPLIT/]SPLIT-label-img/NAME_lab.png`` with 10 classes mapped onto our 8; ``val`` is the
  validation split when present, else ``test``.

Everything is checked before any training (pairs, decodability, sizes, label range, non-empty
splits) and all problems are reported in one ``DatasetError`` naming the files. Each file is
decoded exactly once; the decoded arrays are what trials receive (through Ray's object store).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from segmodels.classes import CLASS_NAMES, NUM_CLASSES
from segmodels.errors import SegsweepError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_MAX_LISTED_PROBLEMS = 20

# FloodNet: 0 background, 1 building-flooded, 2 building-non-flooded, 3 road-flooded,
# 4 road-non-flooded, 5 water, 6 tree, 7 vehicle, 8 pool, 9 grass.
FLOODNET_TO_OURS = np.array([0, 1, 1, 2, 2, 3, 4, 5, 6, 7], dtype=np.uint8)

decode_count = 0  # files decoded in this process; benchmarks check it stays one per file


class DatasetError(SegsweepError, ValueError):
    """A dataset problem a user must fix; the message names the file(s) and the fix."""


@dataclass(frozen=True)
class Pair:
    name: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Layout:
    name: str
    find_splits: Callable[[Path], dict[str, tuple[Path, Path, str]] | None]
    label_map: np.ndarray | None  # raw mask value -> class id; None = identity


@dataclass
class Split:
    names: list[str]
    images: list[np.ndarray]  # (H, W, 3) uint8
    masks: list[np.ndarray]  # (H, W) uint8 class ids

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class SegmentationData:
    """Decoded train and validation splits: the one object every trial of a sweep shares."""

    root: str
    layout: str
    train: Split
    val: Split
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def smallest_side(self) -> int:
        return min(min(img.shape[:2]) for img in self.train.images)

    def describe(self) -> str:
        kind = "SYNTHETIC data" if self.synthetic else f"{self.layout} data"
        return f"{kind} at {self.root}: {len(self.train)} train / {len(self.val)} val images"


def _tiny_floodnet_splits(root: Path) -> dict[str, tuple[Path, Path, str]] | None:
    if not (root / "train" / "image").is_dir():
        return None
    return {
        "train": (root / "train" / "image", root / "train" / "mask", ""),
        "val": (root / "test" / "image", root / "test" / "mask", ""),
    }


def _floodnet_splits(root: Path) -> dict[str, tuple[Path, Path, str]] | None:
    def locate(split: str) -> tuple[Path, Path, str] | None:
        for base in (root / split, root):
            if (base / f"{split}-org-img").is_dir():
                return base / f"{split}-org-img", base / f"{split}-label-img", "_lab"
        return None

    train, val = locate("train"), locate("val") or locate("test")
    if train is None:
        return None
    if val is None:
        raise DatasetError(
            f"{root}: FloodNet layout has train-org-img but no val-org-img or "
            "test-org-img folder for validation"
        )
    return {"train": train, "val": val}


LAYOUTS = (
    Layout("tiny-floodnet", _tiny_floodnet_splits, None),
    Layout("floodnet", _floodnet_splits, FLOODNET_TO_OURS),
)


def detect_layout(root: Path) -> tuple[Layout, dict[str, tuple[Path, Path, str]]]:
    if not root.exists():
        raise DatasetError(
            f"dataset folder {root} does not exist; pass --data DIR of a dataset "
            "or omit --data to use the generated synthetic dataset"
        )
    if not root.is_dir():
        raise DatasetError(f"--data {root} is a file, not a dataset folder")
    for layout in LAYOUTS:
        splits = layout.find_splits(root)
        if splits is not None:
            return layout, splits
    raise DatasetError(
        f"{root}: no known dataset layout; expected train/image + train/mask + test/image + "
        "test/mask (tiny-floodnet) or train-org-img + train-label-img (FloodNet)"
    )


def _pair_files(
    image_dir: Path, mask_dir: Path, mask_suffix: str, problems: list[str]
) -> list[Pair]:
    if not image_dir.is_dir():
        problems.append(f"{image_dir}: folder missing")
        return []
    if not mask_dir.is_dir():
        problems.append(f"{mask_dir}: folder missing (every image needs a mask)")
        return []
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {
        p.stem.removesuffix(mask_suffix): p
        for p in mask_dir.iterdir()
        if p.suffix.lower() == ".png"
    }
    for name in sorted(images.keys() - masks.keys()):
        problems.append(
            f"{images[name]}: image has no mask (expected "
            f"{mask_dir / (name + mask_suffix + '.png')})"
        )
    for name in sorted(masks.keys() - images.keys()):
        problems.append(f"{masks[name]}: mask has no image in {image_dir}")
    if not images:
        problems.append(f"{image_dir}: no images (.jpg/.png) in this split")
    return [Pair(n, images[n], masks[n]) for n in sorted(images.keys() & masks.keys())]


def _decode_image(path: Path, notes: list[str]) -> np.ndarray:
    global decode_count
    decode_count += 1
    with Image.open(path) as img:
        img.load()
        if img.mode != "RGB":
            notes.append(f"{path}: {img.mode} image converted to RGB")
            img = img.convert("RGB")
        return np.asarray(img, dtype=np.uint8)


def _decode_mask(path: Path, label_map: np.ndarray | None) -> np.ndarray:
    global decode_count
    decode_count += 1
    with Image.open(path) as img:
        img.load()
        arr = np.asarray(img)
        mode = img.mode
    if mode in ("RGB", "RGBA"):
        if not (np.array_equal(arr[..., 0], arr[..., 1])
                and np.array_equal(arr[..., 1], arr[..., 2])):
            raise DatasetError(
                f"{path}: colour-coded {mode} mask; masks must be single-channel PNGs "
                "whose pixel values are class ids (convert the colour map to ids first)"
            )
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DatasetError(f"{path}: mask must be a single-channel image, got shape {arr.shape}")
    n_raw = len(label_map) if label_map is not None else NUM_CLASSES
    bad = np.unique(arr[arr >= n_raw]) if arr.size else arr
    if bad.size:  # checked before any cast, so 16-bit values cannot wrap around
        raise DatasetError(f"{path}: label value(s) {', '.join(map(str, bad[:5].tolist()))} "
                           f"outside the {n_raw} classes 0..{n_raw - 1}")
    arr = arr.astype(np.uint8)
    return label_map[arr] if label_map is not None else arr


def _decode_split(pairs: list[Pair], label_map, problems: list[str], notes: list[str]) -> Split:
    split = Split([], [], [])
    for pair in pairs:
        try:
            image = _decode_image(pair.image, notes)
        except Exception as exc:  # PIL raises many types for broken files
            problems.append(
                f"{pair.image}: cannot decode image ({exc}); the file is corrupt or "
                "truncated: replace or remove it together with its mask"
            )
            continue
        try:
            mask = _decode_mask(pair.mask, label_map)
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:
            problems.append(f"{pair.mask}: cannot decode mask ({exc})")
            continue
        if mask.shape != image.shape[:2]:
            problems.append(
                f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{pair.image.name} is {image.shape[1]}x{image.shape[0]} (WxH)"
            )
            continue
        split.names.append(pair.name)
        split.images.append(image)
        split.masks.append(mask)
    return split


def load_dataset(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> SegmentationData:
    """Validate and decode a dataset folder; raise one ``DatasetError`` listing every problem.

    ``splits`` limits decoding (the report needs only "val"); a split left out is empty.
    """
    from segmodels.synthetic import is_synthetic

    unknown = set(splits) - {"train", "val"}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; choose from 'train', 'val'")
    root = Path(root).expanduser()
    layout, split_dirs = detect_layout(root)
    problems: list[str] = []
    notes: list[str] = []
    pairs = {s: _pair_files(*dirs, problems) for s, dirs in split_dirs.items() if s in splits}
    decoded = {s: _decode_split(p, layout.label_map, problems, notes) for s, p in pairs.items()}
    if problems:
        shown = "\n  ".join(problems[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        raise DatasetError(
            f"dataset {root} has {len(problems)} problem(s); fix them before training:\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return SegmentationData(
        str(root),
        layout.name,
        decoded.get("train", Split([], [], [])),
        decoded.get("val", Split([], [], [])),
        synthetic=is_synthetic(root),
        notes=notes,
    )


def validate_dataset(root: str | Path) -> SegmentationData:
    """Check a dataset before any training; returns the decoded data so it is read only once."""
    return load_dataset(root)
