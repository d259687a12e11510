"""The size images are shrunk to on load (``--image-size WxH``), and what one image becomes.

One syntax, ``WIDTHxHEIGHT`` in pixels (``1000x750``): an image larger than that box is shrunk
to fit inside it, its aspect ratio kept (FloodNet's 4000x3000 becomes 1000x750, a 3000x4000
portrait 562x750); an image that already fits is left as it is, never enlarged. Width first,
as the dataset errors and image viewers print sizes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from segmodels.errors import ConfigError

ImageSize = tuple[int, int]  # (width, height) in pixels

_SYNTAX = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def parse_image_size(text: str, flag: str = "--image-size") -> ImageSize:
    """``"1000x750"`` -> (1000, 750); ConfigError naming ``flag`` and the syntax otherwise."""
    match = _SYNTAX.fullmatch(text)
    if match is None:
        raise ConfigError(f"{flag} {text!r}: expected WIDTHxHEIGHT in pixels, e.g. "
                          "1000x750 (FloodNet's 4000x3000 images shrunk 4 times)")
    return check_image_size((int(match[1]), int(match[2])))


def check_image_size(size: Sequence[int] | str) -> ImageSize:
    """A (width, height) of two positive ints, from a tuple, a JSON list or ``"WxH"``."""
    if isinstance(size, str):
        return parse_image_size(size)
    values = tuple(size)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                   for v in values):
        raise ConfigError(f"image_size {size!r}: expected (width, height) in pixels, e.g. "
                          "(1000, 750)")
    if min(values) < 1:
        raise ConfigError(f"image_size {values[0]}x{values[1]}: width and height must be at "
                          "least 1 pixel, e.g. 1000x750")
    return values[0], values[1]


def fit_within(width: int, height: int, box: ImageSize | None) -> ImageSize:
    """(width, height) of a ``width`` x ``height`` image shrunk to fit ``box``, aspect kept;
    unchanged when it fits already or ``box`` is None."""
    if box is None or (width <= box[0] and height <= box[1]):
        return width, height
    scale = min(box[0] / width, box[1] / height)
    return (min(box[0], max(1, round(width * scale))),
            min(box[1], max(1, round(height * scale))))


def format_size(size: ImageSize) -> str:
    return f"{size[0]}x{size[1]}"
