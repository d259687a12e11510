"""Shared fixtures: tiny generated datasets, made once per test session."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    """A small synthetic dataset (8 train / 3 val images of 96x128) on disk."""
    from segmodels.data import synthetic

    root = tmp_path_factory.mktemp("tiny_synthetic")
    return synthetic.generate(root, n_train=8, n_test=3, seed=0, height=96, width=128)


@pytest.fixture(scope="session")
def tiny_data(tiny_dataset_dir):
    from segmodels import load_dataset

    return load_dataset(tiny_dataset_dir)


class DecodeCounter:
    """Image and mask files decoded by dataset loads in this process (decoding workers
    included) since the fixture started."""

    count = 0


@pytest.fixture
def decodes(monkeypatch) -> DecodeCounter:
    from segmodels.data import dataset

    counter, decode_pairs = DecodeCounter(), dataset.decode_pairs

    def counted(*args, **kwargs):
        results = decode_pairs(*args, **kwargs)
        counter.count += sum(r.files_decoded for r in results)
        return results

    monkeypatch.setattr(dataset, "decode_pairs", counted)
    return counter


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Empty torch hub and Hugging Face caches, and no network; returns the attempts made."""
    from huggingface_hub import constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    attempts = []

    def blocked(*args, **kwargs):
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    return attempts
