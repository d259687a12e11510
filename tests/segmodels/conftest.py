"""Fixtures of the segmodels tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import make_tiny


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A small tiny-floodnet dataset of known arrays (see data_helpers), fresh per test."""
    return make_tiny(tmp_path / "data")
