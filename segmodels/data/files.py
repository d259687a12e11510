"""Finding a split's files and pairing each image with its mask, refusing what would pair wrongly.

- Files operating systems leave behind (names starting with ``.``: ``.DS_Store``, macOS's
  ``._NAME.jpg``) are skipped, not refused.
- Names pair after Unicode NFC normalization: macOS writes names decomposed (NFD), Linux and
  Windows tools mostly composed, and ``é.jpg`` must still find ``é.png``.
- Two files of one name in one folder (``a.jpg`` + ``a.png``, ``a.png`` + ``a.PNG``) are
  refused, naming both: which one is meant cannot be told.
- A folder that cannot be listed, a broken link, a folder named like an image: each a problem
  saying what happened. Near misses (``images/`` for ``image/``, a mask saved as ``.jpg``,
  names differing only in case, image formats not read) get a hint naming the fix.
- A validation image that is a training image (the same file through a link, or a copy with
  the same bytes) is refused (``shared_images``): the scores would measure memory, not skill.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIXES = (".png",)  # masks must be lossless
OTHER_IMAGE_SUFFIXES = (".tif", ".tiff", ".bmp", ".webp", ".gif", ".heic", ".jp2")
# folder name expected -> names people use instead
FOLDER_ALIASES = {
    "image": ("images", "img", "imgs"),
    "mask": ("masks", "label", "labels", "annotations", "gt"),
    "train": ("training",),
    "test": ("val", "valid", "validation"),
}


@dataclass(frozen=True)
class ImageMaskPair:
    name: str
    image: Path
    mask: Path


@dataclass
class _Listing:
    files: dict[str, Path] = field(default_factory=dict)  # pairing key -> the file of that name
    ambiguous: set[str] = field(default_factory=set)  # keys of several files, refused already
    near: dict[str, Path] = field(default_factory=dict)  # pairing key -> a file we do not read


def os_reason(exc: OSError) -> str:
    """What an OSError from reading a dataset means, and the fix, in words."""
    if isinstance(exc, PermissionError):
        return "permission denied (let this user read it, e.g. chmod -R a+rX on the dataset)"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, NotADirectoryError):
        return "it is a file, not a folder"
    if isinstance(exc, FileNotFoundError):
        return "it does not exist"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def is_dir(path: Path) -> bool:
    """``Path.is_dir`` that answers False, not PermissionError, for a folder it cannot reach."""
    try:
        return path.is_dir()
    except OSError:
        return False


def missing_folder_hint(path: Path) -> str:
    """'; found X: rename it to NAME' when a folder of a known other name stands where the
    first missing folder of ``path`` is expected; '' otherwise."""
    missing = path
    while not is_dir(missing.parent) and missing.parent != missing.parent.parent:
        missing = missing.parent
    for alias in FOLDER_ALIASES.get(missing.name, ()):
        if is_dir(missing.parent / alias):
            return f"; found {missing.parent / alias}: rename it to {missing.name}"
    return ""


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _list(folder: Path, read: tuple[str, ...], near: tuple[str, ...],
          key: Callable[[str], str], kind: str, problems: list[str]) -> _Listing | None:
    """The ``read`` files of ``folder`` by pairing key; None (with a problem) if it cannot be
    listed."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        note = " (every image needs a mask)" if kind == "mask" else ""
        problems.append(f"{folder}: folder missing{note}{missing_folder_hint(folder)}")
        return None
    except OSError as exc:
        problems.append(f"{folder}: folder cannot be listed: {os_reason(exc)}")
        return None
    listing, named = _Listing(), {}
    for entry in entries:
        path = Path(entry.path)
        suffix = path.suffix.lower()
        if entry.name.startswith(".") or suffix not in read + near:
            continue  # what operating systems leave behind, or not an image at all
        problem = _entry_problem(entry, path, kind, folder)
        if problem:
            problems.append(problem)
        elif suffix in read:
            named.setdefault(key(_key(path.stem)), []).append(path)
        else:
            listing.near.setdefault(key(_key(path.stem)), path)
    for name, paths in named.items():
        if len(paths) > 1:
            others = " and ".join(p.name for p in paths[1:])
            problems.append(f"{paths[0]}: {others} in the same folder has the same name; "
                            f"which {kind} is meant cannot be told: keep one, move the other out")
            listing.ambiguous.add(name)
        else:
            listing.files[name] = paths[0]
    return listing


def _entry_problem(entry: os.DirEntry, path: Path, kind: str, folder: Path) -> str | None:
    try:
        if entry.is_dir():
            return f"{path}: a folder named like an {kind} file; move it out of {folder}"
        if entry.is_file():
            return None
        if entry.is_symlink():
            return (f"{path}: broken symbolic link (to {os.readlink(path)}); restore its "
                    "target or replace the link with the file")
        return f"{path}: not a regular file; put the {kind} file itself here"
    except OSError as exc:
        return f"{path}: cannot be read: {os_reason(exc)}"


def _case_hint(name: str, others: dict[str, Path]) -> str:
    same = [p for k, p in others.items() if k.casefold() == name.casefold()]
    return (f"; {same[0].name} differs only in case: rename one so the names match exactly"
            if same else "")


def pair_split(image_dir: Path, mask_dir: Path, mask_suffix: str,
               problems: list[str]) -> list[ImageMaskPair]:
    """The split's (image, mask) pairs, sorted by name; every problem found goes to
    ``problems``, each line starting with the file or folder it is about."""
    images = _list(image_dir, IMAGE_SUFFIXES, OTHER_IMAGE_SUFFIXES, lambda s: s, "image",
                   problems)
    if images is None:
        return []
    other_masks = tuple(s for s in IMAGE_SUFFIXES + OTHER_IMAGE_SUFFIXES if s not in MASK_SUFFIXES)
    masks = _list(mask_dir, MASK_SUFFIXES, other_masks, lambda s: s.removesuffix(mask_suffix),
                  "mask", problems)
    if masks is None:
        return []
    lonely_images = {k: p for k, p in images.files.items()
                     if k not in masks.files and k not in masks.ambiguous}
    lonely_masks = {k: p for k, p in masks.files.items()
                    if k not in images.files and k not in images.ambiguous}
    for name, path in sorted(lonely_images.items()):
        hint = _case_hint(name, lonely_masks)
        if name in masks.near:
            hint += (f"; found {masks.near[name].name}: masks must be lossless PNGs, export "
                     "it again as PNG from the annotation tool")
        problems.append(f"{path}: image has no mask (expected "
                        f"{mask_dir / (name + mask_suffix + '.png')}){hint}")
    for name, path in sorted(lonely_masks.items()):
        hint = _case_hint(name, lonely_images)
        if name in images.near:
            found = images.near[name]
            hint += (f"; found {found.name}: {found.suffix} images are not read, convert it "
                     "to .png (lossless) or .jpg")
        problems.append(f"{path}: mask has no image in {image_dir}{hint}")
    if not images.files and not images.ambiguous:
        kinds = sorted({p.suffix.lower() for p in images.near.values()})
        hint = (f"; found {len(images.near)} {'/'.join(kinds)} file(s): convert them to .png "
                "(lossless) or .jpg" if kinds else "")
        problems.append(f"{image_dir}: no images (.jpg/.png) in this split{hint}")
    return [ImageMaskPair(n, images.files[n], masks.files[n])
            for n in sorted(images.files.keys() & masks.files.keys())]


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def shared_images(train: list[ImageMaskPair], val: list[ImageMaskPair]) -> list[tuple[Path, Path]]:
    """(validation image, training image) pairs that are one file (a link: same device and
    inode) or hold the same bytes. Cheap on real data: only files of equal size are read and
    hashed, and compressed images of equal size are rare unless they are copies."""
    def stat(path: Path):
        try:
            return os.stat(path)
        except OSError:
            return None  # unreadable: pairing has said so already

    by_inode, by_size = {}, {}
    for pair in train:
        st = stat(pair.image)
        if st is not None:
            by_inode[(st.st_dev, st.st_ino)] = pair.image
            by_size.setdefault(st.st_size, []).append(pair.image)
    digests: dict[Path, str] = {}

    def digest(path: Path) -> str | None:
        if path not in digests:
            try:
                digests[path] = _digest(path)
            except OSError:
                digests[path] = ""
        return digests[path] or None

    shared = []
    for pair in val:
        st = stat(pair.image)
        if st is None:
            continue
        same = by_inode.get((st.st_dev, st.st_ino))
        if same is None and st.st_size in by_size and digest(pair.image) is not None:
            same = next((t for t in by_size[st.st_size] if digest(t) == digest(pair.image)),
                        None)
        if same is not None:
            shared.append((pair.image, same))
    return shared


def file_listing(root: Path, pairs: list[ImageMaskPair]) -> dict[str, list[int]]:
    """Path relative to ``root`` -> [size, modification time in ns] of every image and mask:
    what a sweep records to tell, at resume and report time, whether its data changed. Cheap
    (one stat per file); an edit that keeps both size and time escapes it."""
    listing = {}
    for pair in pairs:
        for path in (pair.image, pair.mask):
            try:
                st = os.stat(path)
            except OSError:
                continue
            name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            listing[name] = [st.st_size, st.st_mtime_ns]
    return listing


def listing_changes(before: dict[str, list[int]], now: dict[str, list[int]],
                    times: bool = True, limit: int = 5) -> list[str]:
    """What differs between two ``file_listing``s: "added: a.jpg", "removed: b.png",
    "changed: c.jpg (size)"; ``times=False`` compares sizes only. At most ``limit`` of each
    kind are named, then a count."""
    def named(kind: str, names: list[str]) -> list[str]:
        shown = [f"{kind}: {n}" for n in names[:limit]]
        return shown + ([f"... and {len(names) - limit} more {kind}"] if len(names) > limit else [])

    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    changed = []
    for name in sorted(set(before) & set(now)):
        (size_a, time_a), (size_b, time_b) = before[name][:2], now[name][:2]
        if size_a != size_b:
            changed.append(f"{name} (size {size_a} -> {size_b} bytes)")
        elif times and time_a != time_b:
            changed.append(f"{name} (modified)")
    return named("added", added) + named("removed", removed) + named("changed", changed)
