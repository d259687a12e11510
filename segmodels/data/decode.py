"""Decoding a dataset's (image, mask) pairs, in this process or in worker processes.

``decode_pair`` is the one per-pair function: both files decoded and checked (``image_io``),
their sizes compared at full resolution (so shrinking never hides a mask drawn for another
image), then both shrunk to the load size. ``decode_pairs`` runs it here for small loads and in
one worker process per CPU for large ones; the same function either way, so the checks, notes
and problems cannot differ. Each result says how many files it decoded, so the caller counts
decodes across processes.

Workers are forked on Linux, as torch's DataLoader workers are: they share the parent's imports
(torch included) instead of importing them again, and the parent's objects are frozen out of
the garbage collector meanwhile, so the children's collections leave those pages shared.
Elsewhere workers start by Python's default method.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segmodels.data.files import ImageMaskPair
from segmodels.data.image_io import SIDEWAYS, Decoded, decode_image, decode_mask, shrink_mask
from segmodels.data.image_size import ImageSize
from segmodels.errors import DatasetError

# Below this many source pixels (about half a second of decoding on one core) starting worker
# processes costs more than it saves: the pairs are decoded in this process.
PARALLEL_MIN_PIXELS = 8_000_000
PROGRESS_AFTER_S = 2.0  # the progress bar shows only on loads that last longer


@dataclass(frozen=True)
class PairTask:
    pair: ImageMaskPair
    n_raw: int  # raw mask values allowed: 0..n_raw-1 (and IGNORE_INDEX)
    lut: np.ndarray | None  # raw mask value -> class id; None = identity
    fit: ImageSize | None  # (width, height) to shrink into; None = as stored


@dataclass
class DecodedPair:
    name: str
    image: np.ndarray | None  # (h, w, 3) uint8 at the load size; None after a problem
    mask: np.ndarray | None  # (h, w) uint8 class ids
    full_size: tuple[int, int] | None  # (W, H) as viewers show it, before shrinking
    conversions: list[tuple[Path, str]] = field(default_factory=list)  # (file, what changed)
    problems: list[str] = field(default_factory=list)
    files_decoded: int = 0


def size_problem(pair: ImageMaskPair, image: Decoded, mask: Decoded) -> str:
    """The mask/image size mismatch, naming EXIF orientation when it is the cause."""
    (h, w), (ih, iw) = mask.viewed_shape, image.viewed_shape
    text = f"{pair.mask}: mask is {w}x{h} but its image {pair.image.name} is {iw}x{ih} (WxH)"
    if image.orientation in SIDEWAYS and (h, w) == image.stored_shape:
        text += (f"; the image's EXIF orientation tag ({image.orientation}) turns it sideways, "
                 "as viewers show it, but the mask was drawn on the stored pixels: remove the "
                 f"tag (exiftool -Orientation=1 -n {pair.image}) or draw the mask on the view "
                 "viewers show")
    elif image.orientation != 1:
        text += f" after applying its EXIF orientation tag ({image.orientation})"
    return text


def decode_pair(task: PairTask) -> DecodedPair:
    """One pair decoded, checked and shrunk; its problems listed, never raised."""
    pair = task.pair
    out = DecodedPair(pair.name, None, None, None)
    decoded = []
    for path, decode in ((pair.image, lambda p: decode_image(p, task.fit)),
                         (pair.mask, lambda p: decode_mask(p, task.n_raw, task.lut))):
        out.files_decoded += 1
        try:
            decoded.append(decode(path))
        except DatasetError as exc:
            out.problems.append(str(exc))
    if out.problems:
        return out
    image, mask = decoded
    if mask.viewed_shape != image.viewed_shape:
        out.problems.append(size_problem(pair, image, mask))
        return out
    h, w = image.array.shape[:2]
    out.image, out.mask = image.array, shrink_mask(mask.array, (w, h))
    out.full_size = (image.viewed_shape[1], image.viewed_shape[0])
    out.conversions = ([(pair.image, n) for n in image.notes]
                       + [(pair.mask, n) for n in mask.notes])
    return out


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_workers(requested: int | None, n_tasks: int, source_pixels: int) -> int:
    """Decoding processes: ``requested``, else one per CPU for a large load and 1 (this
    process) for a small one; never more than there are pairs."""
    if requested is not None and requested < 1:
        raise ValueError(f"workers must be >= 1, got {requested}")
    if requested is None:
        requested = cpu_count() if source_pixels >= PARALLEL_MIN_PIXELS else 1
    return max(1, min(requested, n_tasks))


def decode_pairs(tasks: list[PairTask], workers: int, desc: str) -> list[DecodedPair]:
    """``decode_pair`` over ``tasks``, in order; ``workers`` > 1 runs it in that many
    processes. A bug in a worker is raised here with its traceback."""
    if workers <= 1:
        return list(_progress(map(decode_pair, tasks), len(tasks), desc))
    frozen = gc.get_freeze_count() == 0
    if frozen:
        gc.freeze()
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_ignore_sigint)
    try:
        return list(_progress(pool.map(decode_pair, tasks), len(tasks), desc))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: no new pairs are started
        if frozen:
            gc.unfreeze()


def _context():
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _ignore_sigint() -> None:
    """Ctrl-C reaches the whole process group: the parent stops the load, workers finish
    their pair quietly instead of each printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _progress(results: Iterable[DecodedPair], total: int, desc: str) -> Iterator[DecodedPair]:
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI)
    yield from tqdm(results, total=total, desc=desc, unit="pair", delay=PROGRESS_AFTER_S,
                    disable=None, leave=False)
