"""Shared fixtures: tiny generated datasets, made once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    """A small synthetic dataset (8 train / 3 val images of 96x128) on disk."""
    from segmodels import synthetic

    root = tmp_path_factory.mktemp("tiny_synthetic")
    return synthetic.generate(root, n_train=8, n_test=3, seed=0, height=96, width=128)


@pytest.fixture(scope="session")
def tiny_data(tiny_dataset_dir):
    from segmodels import load_dataset

    return load_dataset(tiny_dataset_dir)
