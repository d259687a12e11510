"""The data wing: files on disk -> checked, decoded uint8 arrays (no torch).

- ``dataset``: the face of the wing's work: ``load_dataset`` finds a layout, checks every file,
  decodes once and returns ``SegmentationData`` (train and val ``Split`` s), or raises one
  ``DatasetError`` listing every problem.
- ``files``: listing a split's files and pairing each image with its mask.
- ``image_io``: decoding one image or mask as a viewer shows it (EXIF turns, palettes, values).
- ``image_size``: the ``--image-size WxH`` box images are shrunk into.
- ``decode``: decoding the pairs, in this process or in worker processes for large loads.
- ``cache``: the decoded, shrunk arrays kept on disk (``python -m segmodels.data --clear``).
- ``memory_check``: refusing a load that would not fit in memory, before decoding.
- ``synthetic``, ``synthetic_floodnet``: generated datasets for offline runs, tests, benchmarks.
- ``constants``: the cache root (``$SEGSWEEP_CACHE``) and the synthetic marker file.
"""

from segmodels.data import cache, memory_check, synthetic
from segmodels.data.constants import CACHE_ENV, SYNTHETIC_MARKER, cache_root
from segmodels.data.dataset import (
    FLOODNET_TO_OURS,
    LAYOUTS,
    SegmentationData,
    Split,
    load_dataset,
)
from segmodels.data.files import listing_changes
from segmodels.data.image_size import ImageSize, format_size, parse_image_size
from segmodels.data.synthetic import SYNTHETIC_DIR, ensure_generated, is_synthetic
from segmodels.data.synthetic_floodnet import generate_floodnet
from segmodels.errors import DatasetError  # the wing's one error, from the ground

__all__ = [
    "CACHE_ENV",
    "FLOODNET_TO_OURS",
    "LAYOUTS",
    "SYNTHETIC_DIR",
    "SYNTHETIC_MARKER",
    "DatasetError",
    "ImageSize",
    "SegmentationData",
    "Split",
    "cache",
    "cache_root",
    "ensure_generated",
    "format_size",
    "generate_floodnet",
    "is_synthetic",
    "listing_changes",
    "load_dataset",
    "memory_check",
    "parse_image_size",
    "synthetic",
]
