"""The decoded, shrunk arrays of a dataset split, kept on disk so the next load decodes nothing.

Loads with an image size (``--image-size``) use it: they are the ones worth skipping (each of
FloodNet's 4000x3000 files takes a fifth of a second to decode), and their arrays are small.
One file per split, ``KEY.npz`` (uncompressed: loading it is a read, not a decode), in
``$SEGSWEEP_CACHE/decoded`` (default ``~/.cache/segsweep/decoded``, beside the synthetic data).
KEY hashes all the arrays depend on: the split's folder and layout, every paired file's path,
size and modification time, the image size, and the versions of this code and Pillow; an
edited, added or removed file therefore means a new key, never stale arrays.

The folder is capped at ``$SEGSWEEP_DECODED_CACHE_GB`` (default 20; 0 turns the cache off):
the least recently used splits go first. ``python -m segmodels.data`` shows it,
``--clear`` empties it. A cache that cannot be written (no space, no permission) or a damaged
file never fails a load: it warns and decodes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from segmodels.data.constants import cache_root
from segmodels.data.files import ImageMaskPair, os_reason
from segmodels.data.image_size import ImageSize
from segmodels.errors import ConfigError

CACHE_VERSION = 1  # bump when decoding or shrinking changes what the arrays hold
CAP_ENV = "SEGSWEEP_DECODED_CACHE_GB"
DEFAULT_CAP_GB = 20.0
_SUFFIX = ".npz"


@dataclass
class Entry:
    images: list[np.ndarray]
    masks: list[np.ndarray]
    meta: dict[str, Any]  # JSON-able: names, counts, notes


def cache_folder() -> Path:
    return cache_root() / "decoded"


def cap_bytes() -> int:
    text = os.environ.get(CAP_ENV, "").strip()
    try:
        gb = float(text) if text else DEFAULT_CAP_GB
    except ValueError:
        gb = -1.0
    if not gb >= 0:  # also NaN
        raise ConfigError(f"${CAP_ENV}={text!r}: expected the cache's size cap in GB, e.g. 20 "
                          "(0 turns the cache of decoded images off)")
    return int(gb * 1e9)


def split_key(layout: str, split: str, pairs: list[ImageMaskPair], fit: ImageSize) -> str | None:
    """The key of a split's arrays; None when a file cannot be looked at (decoding will say
    why, and nothing is cached). Each file counts with its size, modification time, inode and
    status-change time: ``cp -p``, ``rsync -t`` or ``tar x`` can rewrite a file keeping its
    size and modification time, but not its ctime, which only the kernel sets. The same one
    ``stat`` per file as before, so the key costs no more to compute."""
    files = []
    try:
        for pair in pairs:
            for path in (pair.image, pair.mask):
                stat = path.stat()
                files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns,
                              stat.st_ino, stat.st_ctime_ns])
    except OSError:
        return None
    material = {"version": CACHE_VERSION, "pillow": PIL.__version__, "layout": layout,
                "split": split, "size": list(fit), "files": files}
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:40]


def has(key: str, folder: Path | None = None) -> bool:
    return ((folder or cache_folder()) / f"{key}{_SUFFIX}").is_file()


def load(key: str, folder: Path | None = None) -> Entry | None:
    """The entry stored under ``key``; None when there is none or it is damaged (removed)."""
    path = (folder or cache_folder()) / f"{key}{_SUFFIX}"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            n = len(meta["names"])
            images = [npz[f"image_{i}"] for i in range(n)]
            masks = [npz[f"mask_{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"{path}: damaged cache of decoded images ({type(exc).__name__}: {exc}); "
                      "decoding the split again", stacklevel=2)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):  # a read-only cache still serves
        _touch(path)
    return Entry(images, masks, meta)


def store(key: str, entry: Entry, folder: Path | None = None) -> None:
    """Keep ``entry`` under ``key``, then evict the least recently used entries over the cap."""
    folder = folder or cache_folder()
    cap = cap_bytes()
    size = sum(a.nbytes for a in entry.images + entry.masks)
    if cap == 0:
        return
    if size > cap:
        warnings.warn(f"decoded split of {size / 1e9:.1f} GB not cached: over the cache's cap "
                      f"of {cap / 1e9:.1f} GB (raise ${CAP_ENV})", stacklevel=2)
        return
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if free < 2 * size:
            warnings.warn(f"decoded images not cached in {folder}: {size / 1e9:.1f} GB would "
                          f"leave the disk almost full ({free / 1e9:.1f} GB free); the next "
                          "load decodes again", stacklevel=2)
            return
        arrays = {f"image_{i}": a for i, a in enumerate(entry.images)}
        arrays |= {f"mask_{i}": a for i, a in enumerate(entry.masks)}
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(entry.meta)), **arrays)
        os.replace(tmp, folder / f"{key}{_SUFFIX}")  # whole or not at all
        _touch(folder / f"{key}{_SUFFIX}")
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        warnings.warn(f"decoded images not cached in {folder}: {os_reason(exc)}; the next "
                      "load decodes again (set $SEGSWEEP_CACHE to a writable folder)",
                      stacklevel=2)
        return
    _evict(folder, cap, keep=key)


def entries(folder: Path | None = None, pattern: str = f"*{_SUFFIX}") -> list[tuple[Path, int]]:
    """(file, bytes) of the cache, least recently used first; files another process removes
    meanwhile are left out."""
    folder = folder or cache_folder()
    found = []
    for path in folder.glob(pattern) if folder.is_dir() else []:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        found.append((stat.st_mtime, path, stat.st_size))
    return [(path, size) for _, path, size in sorted(found)]


def clear(folder: Path | None = None) -> int:
    """Remove every entry (and temporary file) of ours; returns the bytes freed."""
    folder = folder or cache_folder()
    files = entries(folder) + entries(folder, ".*.tmp")
    for path, _ in files:
        path.unlink(missing_ok=True)
    return sum(size for _, size in files)


def _touch(path: Path) -> None:
    """Mark as just used: evicted last. An explicit time, since a file system stamps writes
    with a coarse clock (ticks of milliseconds) that cannot order loads in quick succession."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _evict(folder: Path, cap: int, keep: str) -> None:
    files = entries(folder)
    total = sum(size for _, size in files)
    for path, size in files:
        if total <= cap:
            break
        if path.stem != keep:
            path.unlink(missing_ok=True)
            total -= size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segmodels.data",
                                description="The cache of decoded, shrunk dataset images.")
    p.add_argument("--clear", action="store_true", help="remove every cached split")
    args = p.parse_args(argv)
    folder = cache_folder()
    if args.clear:
        print(f"{folder}: cleared, {clear(folder) / 1e9:.2f} GB freed")
        return 0
    files = entries(folder)
    total = sum(size for _, size in files)
    print(f"{folder}: {len(files)} cached split(s), {total / 1e9:.2f} GB of a "
          f"{cap_bytes() / 1e9:.0f} GB cap (${CAP_ENV}); clear with --clear")
    return 0

