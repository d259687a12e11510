"""Decoding one image or mask file into the arrays trials train on, as image viewers show it.

- EXIF orientation is applied here, at decode time, to images and masks alike: validation,
  training crops and the report all use these arrays, so they all see the view every viewer
  shows (and the view annotation tools draw masks on).
- Images become 8-bit RGB. A change to what is stored is returned as a note: greyscale or
  palette expanded, alpha dropped, 16-bit greyscale scaled by 255/65535 (not clipped).
- Masks must be lossless PNGs of class ids: single-channel, or RGB(A) with equal channels.
  ``IGNORE_INDEX`` (255) marks unlabelled pixels, and so does full transparency; half
  transparency, colour maps and values outside the classes are refused.
- A file that cannot be read says what it really is: unreadable, empty, a Git LFS pointer,
  a web page, a HEIC photo, over Pillow's size limit, or corrupt.
- Shrinking (``--image-size``) comes after all of that, on the view viewers show: images by
  area interpolation (Pillow's box filter, each pixel the mean of those it covers) before they
  become arrays, so a process never holds more than one full-size copy; masks by nearest
  neighbour, so every pixel keeps a class id that was drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from segmodels.classes import IGNORE_INDEX
from segmodels.data.files import os_reason
from segmodels.data.image_size import ImageSize, fit_within
from segmodels.errors import DatasetError

EXIF_ORIENTATION = 0x0112
TURNS = {2: "mirrored left-right", 3: "turned 180°", 4: "mirrored top-bottom",
         5: "mirrored and turned 90°", 6: "turned 90° clockwise",
         7: "mirrored and turned 90°", 8: "turned 90° counter-clockwise"}
SIDEWAYS = (5, 6, 7, 8)  # orientations that swap width and height
MASK_MODES = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "I;16N")
LOSSY_FORMATS = ("JPEG", "MPO", "WEBP", "JPEG2000", "AVIF", "HEIF")
# (what the first bytes start with, what the file really is, the fix)
NOT_IMAGES = (
    (b"version https://git-lfs", "a Git LFS pointer, not the image itself",
     "run `git lfs pull` in the dataset's repository"),
    (b"<!doctype html", "a web page (a failed download?)", "download the file again"),
    (b"<html", "a web page (a failed download?)", "download the file again"),
)


@dataclass
class Decoded:
    array: np.ndarray  # image (H, W, 3) uint8 or mask (H, W) uint8 class ids
    stored_shape: tuple[int, int]  # (H, W) as stored, before the EXIF orientation
    viewed_shape: tuple[int, int]  # (H, W) as viewers show it, before any shrinking
    orientation: int = 1  # EXIF orientation tag; 1 = as stored
    notes: list[str] = field(default_factory=list)  # what was converted, one phrase each


def _open(path: Path, kind: str) -> Image.Image:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: {kind} cannot be read: {os_reason(exc)}") from None
    if not raw:
        raise DatasetError(f"{path}: {kind} file is empty (0 bytes); copy it again from the "
                           "source")
    head = raw[:64].lstrip().lower()
    for start, what, fix in NOT_IMAGES:
        if head.startswith(start):
            raise DatasetError(f"{path}: this {kind} file is {what}; {fix}")
    if raw[4:8] == b"ftyp" and raw[8:12] in (b"heic", b"heix", b"mif1", b"hevc"):
        raise DatasetError(f"{path}: this {kind} file is a HEIC photo, which is not read; "
                           "convert it to .jpg or .png")
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"{path}: {kind} is larger than Pillow's safety limit ({exc}); "
                           "if it is genuine, tile or shrink it (and its pair the same "
                           "way)") from None
    except Exception as exc:  # PIL raises many types for broken files
        raise DatasetError(f"{path}: cannot decode {kind} ({exc}); the file is corrupt or "
                           f"truncated: replace it from the source, or remove it together "
                           f"with its {'mask' if kind == 'image' else 'image'}") from None
    return img


def _orient(img: Image.Image, notes: list[str]) -> tuple[Image.Image, int]:
    try:
        orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: viewers show the pixels as stored
        orientation = 1
    if orientation not in TURNS:  # 1, or a value viewers ignore too
        return img, 1
    notes.append(f"EXIF orientation {orientation} applied ({TURNS[orientation]}, as image "
                 "viewers show it)")
    return ImageOps.exif_transpose(img), orientation


def decode_image(path: Path, fit: ImageSize | None = None) -> Decoded:
    """(H, W, 3) uint8 RGB as viewers show it, shrunk to fit ``fit`` (width, height) when it is
    larger; DatasetError saying what is wrong."""
    img = _open(path, "image")
    stored = (img.height, img.width)
    notes: list[str] = []
    img, orientation = _orient(img, notes)
    viewed = (img.height, img.width)
    mode = img.mode
    if mode.startswith("I"):
        grey = np.asarray(img)
        if grey.min() < 0 or grey.max() > 65535:
            raise DatasetError(f"{path}: 32-bit integer image with values {grey.min()}.."
                               f"{grey.max()}; save it as an 8-bit RGB .png or .jpg")
        grey = (grey.astype(np.uint32) * 255 + 32767) // 65535  # rounds; clipping goes white
        img = Image.fromarray(grey.astype(np.uint8), "L")
        notes.append(f"16-bit greyscale ({mode}) image scaled to 8 bits (x 255/65535) and "
                     "converted to RGB")
    elif mode == "F":
        raise DatasetError(f"{path}: floating-point image (mode F); save it as an 8-bit RGB "
                           ".png or .jpg")
    elif mode != "RGB":
        detail = {"L": "grey copied to 3 channels", "1": "black and white",
                  "RGBA": "alpha channel dropped", "LA": "alpha channel dropped",
                  "PA": "alpha channel dropped"}.get(mode)
        notes.append(f"{mode} image converted to RGB" + (f" ({detail})" if detail else ""))
    if img.mode != "RGB":
        img = img.convert("RGB")
    size = fit_within(img.width, img.height, fit)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BOX)  # area interpolation
    return Decoded(np.asarray(img), stored, viewed, orientation, notes)


def shrink_mask(mask: np.ndarray, size: ImageSize) -> np.ndarray:
    """A decoded, checked (H, W) mask at ``size`` (width, height), nearest neighbour: no
    pixel gets a class id between two drawn ones."""
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))


def decode_mask(path: Path, n_raw: int, lut: np.ndarray | None) -> Decoded:
    """(H, W) uint8 class ids (``lut`` maps raw values, None = identity), IGNORE_INDEX where
    unlabelled; DatasetError saying what is wrong."""
    img = _open(path, "mask")
    if img.format != "PNG":
        lossy = (" (lossy: its compression noise turns pixels into classes never drawn)"
                 if img.format in LOSSY_FORMATS else "")
        raise DatasetError(f"{path}: mask is really a {img.format} file{lossy}, not a PNG; "
                           "masks must be lossless PNGs: export it again as PNG from the "
                           "annotation tool")
    stored = (img.height, img.width)
    notes: list[str] = []
    img, orientation = _orient(img, notes)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("PA")  # palette index + its transparency
    mode = img.mode
    if mode not in MASK_MODES:
        raise DatasetError(f"{path}: mask of mode {mode} cannot hold class ids; save masks as "
                           "single-channel (L or P) PNGs whose pixel values are class ids")
    values = np.asarray(img)
    img.close()  # its pixels are in `values`: a worker holds one full-size copy, not two
    alpha = None
    if mode in ("LA", "PA", "RGBA"):
        values, alpha = values[..., :-1], values[..., -1]
    if values.ndim == 3:
        values = _grey_or_refuse(path, mode, values, alpha)
    if alpha is not None:
        values = _transparent_is_unlabelled(path, mode, values, alpha, notes)
    if values.max(initial=0) >= n_raw or values.min(initial=0) < 0:  # else no pixel copies
        _refuse_values_outside(path, values, n_raw)
    values = values.astype(np.uint8, copy=False)  # checked, so 16-bit values cannot wrap
    return Decoded(lut[values] if lut is not None else values, stored, values.shape,
                   orientation, notes)


def _refuse_values_outside(path: Path, values: np.ndarray, n_raw: int) -> None:
    """DatasetError naming the values outside the classes, if any (IGNORE_INDEX is not)."""
    bad_pixels = (values >= n_raw) & (values != IGNORE_INDEX)
    if values.dtype.kind == "i":
        bad_pixels |= values < 0
    if bad_pixels.any():
        bad = np.unique(values[bad_pixels])[:5].tolist()
        raise DatasetError(f"{path}: label value(s) {', '.join(map(str, bad))} outside the "
                           f"{n_raw} classes 0..{n_raw - 1} in {int(bad_pixels.sum())} pixel(s); "
                           f"fix the mask ({IGNORE_INDEX} may mark unlabelled pixels)")


def _grey_or_refuse(path: Path, mode: str, values: np.ndarray,
                    alpha: np.ndarray | None) -> np.ndarray:
    """(H, W, C) with equal channels (where labelled) -> (H, W); a colour map is refused."""
    labelled = slice(None) if alpha is None else alpha != 0
    first = values[..., 0]
    if any(not np.array_equal(first[labelled], values[..., c][labelled])
           for c in range(1, values.shape[-1])):
        raise DatasetError(f"{path}: colour-coded {mode} mask; masks must be single-channel "
                           "PNGs whose pixel values are class ids (convert the colour map to "
                           "ids first)")
    return first


def _transparent_is_unlabelled(path: Path, mode: str, values: np.ndarray, alpha: np.ndarray,
                               notes: list[str]) -> np.ndarray:
    partial = int(((alpha > 0) & (alpha < 255)).sum())
    if partial:
        raise DatasetError(f"{path}: {partial} pixel(s) of the mask are semi-transparent; a "
                           "mask's alpha may only be 0 (unlabelled, ignored) or 255 "
                           "(labelled): export it without anti-aliasing or feathering")
    transparent = alpha == 0
    if not transparent.any():
        return values
    notes.append(f"{mode} mask: fully transparent pixels taken as unlabelled "
                 f"({IGNORE_INDEX}, ignored)")
    values = values.copy()  # uint8: LA, PA and RGBA are 8-bit
    values[transparent] = IGNORE_INDEX
    return values
