"""Refusing, before any decoding, a dataset whose decoded arrays will not fit in memory.

Decoded, a pixel takes 4 bytes (RGB image + mask) at the size it is loaded at, and each
decoding process also holds one full-size image while it works: FloodNet's 1,895 original
4000x3000 images come to about 85 GiB, at ``--image-size 1000x750`` to about 5.3 GiB. Sizes
come from the image files' headers, nothing is decoded. The refusal gives the figures and an
``--image-size`` whose arrays take at most half the available memory (a sweep holds them
twice: in the driver while it hands them over, and in Ray's object store).

Available memory is Linux's MemAvailable, lowered to a container's (cgroup) limit; where it
cannot be read, the check is skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from segmodels.data.files import ImageMaskPair
from segmodels.data.image_size import ImageSize, fit_within, format_size
from segmodels.errors import DatasetError

BYTES_PER_PIXEL = 4  # decoded: 3 (RGB image) + 1 (mask)
GIB = 2**30
_CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


@dataclass(frozen=True)
class Estimate:
    images: int  # whose header could be read
    largest: ImageSize  # (width, height) of the largest image as stored
    decoded_bytes: int  # every array at its load size
    working_bytes: int  # one full-size image per decoding process

    @property
    def total(self) -> int:
        return self.decoded_bytes + self.working_bytes


def image_sizes(pairs: Iterable[ImageMaskPair]) -> list[ImageSize]:
    """(width, height) from each readable image's header; an unreadable one is left out
    (decoding will say what is wrong with it)."""
    sizes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged header's warning comes again on decoding
        for pair in pairs:
            try:
                with Image.open(pair.image) as img:
                    sizes.append(img.size)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                continue
    return sizes


def estimate(sizes: list[ImageSize], fit: ImageSize | None, workers: int) -> Estimate:
    """Memory of decoding images of ``sizes`` at ``fit`` with ``workers`` processes."""
    if not sizes:
        return Estimate(0, (0, 0), 0, 0)
    largest = max(sizes, key=lambda s: s[0] * s[1])
    decoded = sum(w * h for w, h in (fit_within(*s, fit) for s in sizes))
    return Estimate(len(sizes), largest, BYTES_PER_PIXEL * decoded,
                    BYTES_PER_PIXEL * largest[0] * largest[1] * workers)


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping; None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: line.split()[1] for line in f}
        available = int(info["MemAvailable"]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge v1 value: no limit
            available = min(available, int(limit) - usage)
        break
    return available


def check_fits(root: Path, sizes: list[ImageSize], fit: ImageSize | None, workers: int,
               available: int | None) -> None:
    """DatasetError with the figures and the flag to use when decoding will not fit."""
    need = estimate(sizes, fit, workers)
    if available is None or need.total <= available:
        return
    at = f" at {format_size(fit)}" if fit else ""
    text = (f"dataset {root}: decoding it needs about {_human(need.total)} of memory "
            f"({need.images} images of up to {format_size(need.largest)}{at}: "
            f"{_human(need.decoded_bytes)} of arrays, plus one full-size image in each of "
            f"{workers} decoding process(es)) but {_human(available)} is available")
    smaller = suggest_size(sizes, workers, available)
    if smaller is None:
        raise DatasetError(f"{text}; free memory, or load it on a larger machine")
    suggested = estimate(sizes, smaller, workers)
    raise DatasetError(f"{text}; shrink the images on load with --image-size "
                       f"{format_size(smaller)} (about {_human(suggested.total)}; "
                       f"load_dataset(image_size={smaller})), or free memory")


def suggest_size(sizes: list[ImageSize], workers: int, available: int) -> ImageSize | None:
    """The largest image halved until the arrays take at most half of ``available`` and the
    whole load fits; None when even 16 px images would not."""
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    while min(width, height) >= 32:
        width, height = width // 2, height // 2
        need = estimate(sizes, (width, height), workers)
        if need.decoded_bytes <= available / 2 and need.total <= available:
            return width, height
    return None


def _human(size: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 2**20)):
        if size >= scale / 10:
            return f"{size / scale:.1f} {unit}"
    return f"{max(size, 0) / 1024:.1f} KiB"
