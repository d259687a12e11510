"""Finding, validating and decoding a segmentation dataset, once.

Two on-disk layouts are understood (``LAYOUTS``):

- ``tiny-floodnet``: ``ROOT/{train,test}/image/NAME.jpg`` + ``ROOT/{train,test}/mask/NAME.png``,
  mask pixel = class id 0..7; ``test`` is the validation split.
- ``floodnet``: the original FloodNet release, ``[ROOT/SPLIT/]SPLIT-org-img/NAME.jpg`` +
  ``[ROOT/SPLIT/]SPLIT-label-img/NAME_lab.png`` with 10 classes mapped onto our 8; ``val`` is the
  validation split when present, else ``test``.

Everything is checked before any training (pairs in ``data_files``, decoding in ``image_io``:
sizes, label range, lossless masks, non-empty splits) and all problems are reported in one
``DatasetError`` naming the files. A mask value of ``IGNORE_INDEX`` (255) marks unlabelled
pixels: accepted, counted per split. Conversions (EXIF orientation, greyscale, 16-bit,
transparency) are kept as ``notes``, which the sweep stores and the report shows. Each file is
decoded exactly once; the decoded arrays are what trials receive (through Ray's object store).

Full-resolution datasets (FloodNet's 4000x3000 originals): ``image_size`` shrinks every image
to fit a box after it is decoded and checked (``image_size``, ``image_io``), large loads are
decoded in worker processes (``parallel_decode``), a load that would not fit in memory is
refused first (``memory_check``), and shrunk splits are cached (``data_cache``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segmodels.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from segmodels.data import cache as data_cache
from segmodels.data import memory_check
from segmodels.data.decode import DecodedPair, PairTask, choose_workers, decode_pairs
from segmodels.data.files import (
    ImageMaskPair,
    file_listing,
    is_dir,
    missing_folder_hint,
    os_reason,
    pair_split,
    shared_images,
)
from segmodels.data.image_size import ImageSize, check_image_size, fit_within, format_size
from segmodels.errors import DatasetError

_MAX_LISTED_PROBLEMS = 20

# FloodNet: 0 background, 1 building-flooded, 2 building-non-flooded, 3 road-flooded,
# 4 road-non-flooded, 5 water, 6 tree, 7 vehicle, 8 pool, 9 grass.
FLOODNET_TO_OURS = np.array([0, 1, 1, 2, 2, 3, 4, 5, 6, 7], dtype=np.uint8)


@dataclass(frozen=True)
class Layout:
    name: str
    find_splits: Callable[[Path], dict[str, tuple[Path, Path, str]] | None]
    label_map: np.ndarray | None  # raw mask value -> class id; None = identity

    @property
    def lut(self) -> np.ndarray | None:
        """``label_map`` over every uint8 value, IGNORE_INDEX kept as it is."""
        if self.label_map is None:
            return None
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        lut[: len(self.label_map)] = self.label_map
        return lut


@dataclass
class Split:
    names: list[str]
    images: list[np.ndarray]  # (H, W, 3) uint8
    masks: list[np.ndarray]  # (H, W) uint8 class ids, IGNORE_INDEX where unlabelled
    ignored_pixels: int = 0  # mask pixels equal to IGNORE_INDEX
    full_sizes: list[ImageSize] = field(default_factory=list)  # (W, H) of each before shrinking

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
    image_size: ImageSize | None = None  # (W, H) the images were shrunk to fit; None = as stored
    files: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # split -> file_listing

    @property
    def smallest_side(self) -> int:
        return min(min(img.shape[:2]) for img in self.train.images)

    def describe(self) -> str:
        kind = "SYNTHETIC data" if self.synthetic else f"{self.layout} data"
        text = f"{kind} at {self.root}: {len(self.train)} train / {len(self.val)} val images"
        if self.train.ignored_pixels or self.val.ignored_pixels:
            text += (f"; unlabelled ({IGNORE_INDEX}, ignored): {self.train.ignored_pixels} "
                     f"train / {self.val.ignored_pixels} val pixels")
        if self.image_size is not None:
            sizes = self.train.full_sizes + self.val.full_sizes
            shrunk = [s for s in sizes if fit_within(*s, self.image_size) != s]
            text += f"; loaded to fit {format_size(self.image_size)}"
            if shrunk:
                largest = max(shrunk, key=lambda s: s[0] * s[1])
                text += f" ({len(shrunk)} shrunk, from up to {format_size(largest)})"
        return text


def _tiny_floodnet_splits(root: Path) -> dict[str, tuple[Path, Path, str]] | None:
    if not is_dir(root / "train" / "image"):
        return None
    return {
        "train": (root / "train" / "image", root / "train" / "mask", ""),
        "val": (root / "test" / "image", root / "test" / "mask", ""),
    }


def _floodnet_splits(root: Path) -> dict[str, tuple[Path, Path, str]] | None:
    def locate(split: str) -> tuple[Path, Path, str] | None:
        for base in (root / split, root):
            if is_dir(base / f"{split}-org-img"):
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
    try:
        exists, folder = root.exists(), root.is_dir()
    except OSError as exc:
        raise DatasetError(f"--data {root}: cannot be read: {os_reason(exc)}") from None
    if not exists:
        raise DatasetError(
            f"dataset folder {root} does not exist; pass --data DIR of a dataset "
            "or omit --data to use the generated synthetic dataset"
        )
    if not folder:
        raise DatasetError(f"--data {root} is a file, not a dataset folder")
    for layout in LAYOUTS:
        splits = layout.find_splits(root)
        if splits is not None:
            return layout, splits
    raise DatasetError(
        f"{root}: no known dataset layout; expected train/image + train/mask + test/image + "
        "test/mask (tiny-floodnet) or train-org-img + train-label-img (FloodNet)"
        + _layout_hint(root)
    )


def _layout_hint(root: Path) -> str:
    """How a folder that is almost a dataset becomes one."""
    if is_dir(root / "image") and is_dir(root / "mask"):
        return (f"; {root} looks like one split (image/ + mask/): pass the folder above it, "
                "which holds train/ and test/")
    hint = missing_folder_hint(root / "train" / "image")
    if hint:
        return hint
    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        return f"; {root} cannot be listed: {os_reason(exc)}"
    for child in children:
        if is_dir(child) and any(_quietly_finds(layout, child) for layout in LAYOUTS):
            return f"; found a dataset in {child}: pass --data {child}"
    archives = [c.name for c in children if c.suffix.lower() in (".zip", ".tar", ".gz", ".tgz")]
    return f"; found {archives[0]}: unpack it first" if archives else ""


def _quietly_finds(layout: Layout, folder: Path) -> bool:
    try:
        return layout.find_splits(folder) is not None
    except DatasetError:
        return True  # found, though incomplete: pointing the user there is still right


def _split(results: list[DecodedPair], problems: list[str],
           conversions: list[tuple[Path, str]]) -> Split:
    split = Split([], [], [])
    for result in results:
        problems += result.problems
        if result.image is None:
            continue
        conversions += result.conversions
        split.names.append(result.name)
        split.images.append(result.image)
        split.masks.append(result.mask)
        split.full_sizes.append(result.full_size)
        split.ignored_pixels += int(np.count_nonzero(result.mask == IGNORE_INDEX))
    return split


def _entry(split: Split, conversions: list[tuple[Path, str]]) -> data_cache.Entry:
    return data_cache.Entry(split.images, split.masks, {
        "names": split.names, "ignored_pixels": split.ignored_pixels,
        "full_sizes": split.full_sizes, "conversions": [[str(p), n] for p, n in conversions]})


def _from_entry(entry: data_cache.Entry) -> tuple[Split, list[tuple[Path, str]]]:
    meta = entry.meta
    split = Split(meta["names"], entry.images, entry.masks, meta["ignored_pixels"],
                  [tuple(s) for s in meta["full_sizes"]])
    return split, [(Path(p), n) for p, n in meta["conversions"]]


def _grouped(conversions: list[tuple[Path, str]]) -> list[str]:
    """One note per kind of conversion, naming its first file and how many more."""
    files: dict[str, list[Path]] = {}
    for path, what in conversions:
        files.setdefault(what, []).append(path)
    notes = []
    for what, paths in files.items():
        others = ", ".join(p.name for p in paths[1:4]) + (", ..." if len(paths) > 4 else "")
        more = f" and {len(paths) - 1} more ({others})" if len(paths) > 1 else ""
        notes.append(f"{paths[0]}{more}: {what}")
    return notes


def _ignore_note(splits: dict[str, Split]) -> list[str]:
    counts = [f"{s.ignored_pixels} {name} pixels ({s.ignored_pixels / _pixels(s):.2%})"
              for name, s in splits.items() if s.ignored_pixels]
    if not counts:
        return []
    return [f"mask value {IGNORE_INDEX} marks unlabelled pixels, ignored by the loss and the "
            f"metrics: {', '.join(counts)}"]


def _pixels(split: Split) -> int:
    return sum(m.size for m in split.masks)


def one_line(text: str) -> str:
    """A problem on one line of the list, whatever its file names hold: control characters
    (a newline in a name) are written as escapes, the way ``ls -b`` shows them."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _refuse_shared_images(root: Path, pairs: dict[str, list[ImageMaskPair]]) -> None:
    """Before any decoding: validation images that are training images (links or copies)."""
    if not pairs.get("train") or not pairs.get("val"):
        return
    shared = shared_images(pairs["train"], pairs["val"])
    if not shared:
        return

    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    listed = "\n  ".join(one_line(f"{shown(v)} = {shown(t)}")
                          for v, t in shared[:_MAX_LISTED_PROBLEMS])
    more = len(shared) - _MAX_LISTED_PROBLEMS
    raise DatasetError(
        f"dataset {root}: {len(shared)} of {len(pairs['val'])} validation image(s) are also "
        "training images (the same file through a link, or a copy with the same bytes); "
        "validation must hold images the model never trains on, or its scores measure memory:"
        f"\n  {listed}" + (f"\n  ... and {more} more" if more > 0 else ""))


def load_dataset(root: str | Path, splits: tuple[str, ...] = ("train", "val"), *,
                 image_size: Sequence[int] | str | None = None, workers: int | None = None,
                 cache_dir: str | Path | None = None) -> SegmentationData:
    """Validate and decode a dataset folder; raise one ``DatasetError`` listing every problem.

    ``splits`` limits decoding (the report needs only "val"); a split left out is empty.
    ``image_size`` (width, height), e.g. (1000, 750): images larger than it are shrunk to fit
    (aspect kept), and the shrunk splits are cached in ``cache_dir`` (default
    ``data_cache.cache_folder()``), so the next load decodes nothing. ``workers``: decoding
    processes (default: one per CPU for a large load). A load whose arrays would not fit in
    the available memory is refused before decoding, naming the ``image_size`` that would.
    """
    from segmodels.data.synthetic import is_synthetic

    unknown = set(splits) - {"train", "val"}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; choose from 'train', 'val'")
    fit = check_image_size(image_size) if image_size is not None else None
    root = Path(root).expanduser().resolve()  # recorded as such: never another folder's data/
    layout, split_dirs = detect_layout(root)
    problems: list[str] = []
    pairs = {s: pair_split(*dirs, problems) for s, dirs in split_dirs.items() if s in splits}
    _refuse_shared_images(root, pairs)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else data_cache.cache_folder()
    keys = ({s: data_cache.split_key(layout.name, s, p, fit) for s, p in pairs.items()}
            if fit is not None and data_cache.cap_bytes() > 0 else {})
    sizes = {s: memory_check.image_sizes(p) for s, p in pairs.items()}
    todo = [s for s in pairs if not (keys.get(s) and data_cache.has(keys[s], folder))]
    n_workers = choose_workers(workers, sum(len(pairs[s]) for s in todo),
                               sum(w * h for s in todo for w, h in sizes[s]))
    memory_check.check_fits(root, [size for s in pairs for size in sizes[s]], fit, n_workers,
                            memory_check.available_memory())
    decoded: dict[str, Split] = {}
    conversions: dict[str, list[tuple[Path, str]]] = {}
    for s in pairs:
        entry = None if s in todo else data_cache.load(keys[s], folder)
        if entry is not None:
            decoded[s], conversions[s] = _from_entry(entry)
        elif s not in todo:
            todo.append(s)  # a damaged entry: decoded again
    n_raw = len(layout.label_map) if layout.label_map is not None else NUM_CLASSES
    tasks = [PairTask(pair, n_raw, layout.lut, fit) for s in todo for pair in pairs[s]]
    results = decode_pairs(tasks, n_workers, f"decoding {root}")
    for s in todo:
        conversions[s] = []
        decoded[s] = _split(results[:len(pairs[s])], problems, conversions[s])
        results = results[len(pairs[s]):]
    if problems:
        shown = "\n  ".join(one_line(p) for p in problems[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        raise DatasetError(
            f"dataset {root} has {len(problems)} problem(s); fix them before training:\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    for s in todo:
        if keys.get(s):
            data_cache.store(keys[s], _entry(decoded[s], conversions[s]), folder)
    decoded = {s: decoded[s] for s in pairs}  # train before val, as the notes list them
    notes = _grouped([c for s in pairs for c in conversions[s]]) + _ignore_note(decoded)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return SegmentationData(
        str(root),
        layout.name,
        decoded.get("train", Split([], [], [])),
        decoded.get("val", Split([], [], [])),
        synthetic=is_synthetic(root),
        notes=notes,
        image_size=fit,
        files={s: file_listing(root, p) for s, p in pairs.items()},
    )
