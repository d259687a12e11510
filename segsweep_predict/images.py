"""Images read as training read them (``segmodels.data.image_io``, which this mirrors without
its imports; tests/segsweep_predict checks both give the same pixels): EXIF orientation
applied, as viewers show the image; 16-bit greyscale scaled to 8 bits; every other mode
converted to RGB. An unreadable file is one ``ImageError`` naming it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


class ImageError(ValueError):
    """A file that cannot be read as an image; the message names it and says why."""


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, oriented as image viewers show it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not raw:
        raise ImageError(f"{path}: the file is empty (0 bytes)")
    if raw[4:8] == b"ftyp" and raw[8:12] in (b"heic", b"heix", b"mif1", b"hevc"):
        raise ImageError(f"{path}: a HEIC photo, which is not read; convert it to .jpg or .png")
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: larger than Pillow's safety limit ({exc}); tile or shrink "
                         "it") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken files
        raise ImageError(f"{path}: cannot decode it as an image ({exc}); the file is corrupt "
                         "or truncated") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the pixels as stored
        pass
    if img.mode.startswith("I"):
        grey = np.asarray(img)
        if grey.min() < 0 or grey.max() > 65535:
            raise ImageError(f"{path}: 32-bit integer image with values {grey.min()}.."
                             f"{grey.max()}; save it as an 8-bit RGB .png or .jpg")
        grey = (grey.astype(np.uint32) * 255 + 32767) // 65535
        img = Image.fromarray(grey.astype(np.uint8), "L")
    elif img.mode == "F":
        raise ImageError(f"{path}: floating-point image (mode F); save it as an 8-bit RGB "
                         ".png or .jpg")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)
