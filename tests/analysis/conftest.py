"""A tiny real sweep, made once per test session, that the analysis tests read.

Four DeepLab-MobileNetV3-small trials (ASPP x augmentation) on a generated 64x96 dataset, two
epochs each, trained by ``tune_app.py`` exactly as a user runs it: the tables, plots and report
are checked against what those trials wrote, not against hand-written numbers. The grid holds
both kinds of course pair (augmentation, ASPP). About a minute on two busy cores.

While iterating on analysis, ``ANALYSIS_TEST_SWEEP=DIR`` reuses a sweep an earlier session of
this fixture made (DIR = /tmp/pytest-of-$USER/pytest-N/analysis_sweep0/runs/t); tests that
damage a sweep work on copies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_helpers import EPOCHS, GRID

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory) -> Path:
    """STORAGE/t of a finished 4-trial sweep (FIFO, 2 epochs)."""
    from segmodels.data import synthetic

    if os.environ.get("ANALYSIS_TEST_SWEEP"):
        return Path(os.environ["ANALYSIS_TEST_SWEEP"])

    root = tmp_path_factory.mktemp("analysis_sweep")
    data = synthetic.generate(root / "data", n_train=6, n_test=2, seed=0, height=64, width=96)
    grid = root / "tiny.yaml"
    grid.write_text(GRID)
    cmd = [sys.executable, str(REPO / "tune_app.py"), "--grid", str(grid), "--data", str(data),
           "--epochs", str(EPOCHS), "--crop-size", "48", "--batch-size", "4",
           "--inference-repeats", "1", "--scheduler", "fifo", "--storage", str(root / "runs"),
           "--name", "t", "--num-cpus", "2", "--no-report", "--no-dashboard"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"tiny sweep failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}")
    return root / "runs" / "t"


@pytest.fixture(scope="session")
def experiment(sweep_dir):
    from analysis.loading import load_experiment

    return load_experiment(sweep_dir)


@pytest.fixture(scope="session")
def val_split(experiment):
    from analysis.dataset import load_validation

    val, notes = load_validation(experiment.meta)
    assert val is not None, notes
    return val


@pytest.fixture(scope="session")
def report_html(sweep_dir, tmp_path_factory) -> Path:
    """report.html (with examples) built once into a separate folder."""
    from analysis.report import build_report

    return build_report(sweep_dir, tmp_path_factory.mktemp("report"))


@pytest.fixture
def sweep_copy(sweep_dir, tmp_path) -> Path:
    """A private copy of the sweep that a test may damage."""
    return Path(shutil.copytree(sweep_dir, tmp_path / "t", ignore=shutil.ignore_patterns("report")))

