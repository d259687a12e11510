"""The data wing's constants, each defined once: where segsweep keeps generated and decoded
data, and the file that marks a folder as segsweep's synthetic dataset."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SEGSWEEP_CACHE"  # moves every cache below (synthetic data, decoded arrays)
DEFAULT_CACHE_ROOT = "~/.cache/segsweep"
SYNTHETIC_MARKER = "SYNTHETIC.json"  # written by the generators; a dataset with it is synthetic


def cache_root() -> Path:
    """``$SEGSWEEP_CACHE``, else ``~/.cache/segsweep``, with ``~`` expanded."""
    return Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE_ROOT)).expanduser()
