"""Shared fixtures (tiny generated datasets, made once per test session) and the order the
suite runs in.

``make test`` runs on two workers (pytest-xdist, ``--dist loadgroup``). Two rules keep that both
fast and honest:
- slow tests start first, so the long sweeps overlap and the quick tests fill the gaps at the end;
- tests that share a fixture built once (a sweep killed and resumed, the analysis tests' stored
  sweep) run on one worker, so the sweep behind them is still built once. A module names its
  own such fixtures in ``BUILT_ONCE``; session-wide ones are in ``SESSION_BUILT_ONCE`` below.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# Session fixtures that build something costly (a sweep): their tests share one worker.
SESSION_BUILT_ONCE = ("sweep_dir", "homework_seeds")


def built_once_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that uses a fixture built once for several tests: the first
    such fixture it depends on (directly or through another fixture), else None."""
    own = getattr(getattr(item, "module", None), "BUILT_ONCE", ())
    for name in own:
        if name in item.fixturenames:
            return f"{item.module.__name__}:{name}"
    for name in SESSION_BUILT_ONCE:
        if name in item.fixturenames:
            return f"session:{name}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: a module's tests stay together), and one xdist group
    per fixture built once. Runs before xdist reads the groups (it hooks in later)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        group = built_once_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


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


@dataclass
class CliSweep:
    stdout: str
    exp: Path
    stderr: str = ""


@pytest.fixture(scope="session")
def homework_seeds(tmp_path_factory, tiny_dataset_dir) -> CliSweep:
    """The course's grid with --seeds 3 (18 trials, 2 epochs of 32-px crops) through the CLI,
    its output read through a pipe, report included: what the seed tests of the CLI, the
    console test, the report, the export and bench/seeds.py read."""
    root = Path(__file__).resolve().parents[1]
    storage = tmp_path_factory.mktemp("homework_seeds")
    args = ["--grid", "homework", "--seeds", "3", "--data", str(tiny_dataset_dir),
            "--epochs", "2", "--crop-size", "32", "--batch-size", "2", "--inference-repeats",
            "1", "--inference-size", "64x48", "--storage", str(storage), "--num-cpus", "2",
            "--no-dashboard"]  # the dashboard's line and port: tests/e2e/test_reliability.py
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(root / "tune_app.py"), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return CliSweep(proc.stdout, storage / "homework", proc.stderr)
