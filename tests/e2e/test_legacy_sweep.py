"""A sweep stored before segmodels was split into wings still loads, reports and resumes.

``tests/data/legacy_sweep`` is a finished two-trial sweep (tiny UNets, 2 epochs, the synthetic
default dataset) written by the flat layout (``segmodels.config``, ``segmodels.data``, ...),
with its tuner state, experiment state, checkpoints and results; its report and TensorBoard
files were left out (outputs, rewritten by the report). It names the folders it was written in;
the copy here is moved as a user moves a sweep, by rewriting those paths.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "data" / "legacy_sweep"
WRITTEN_IN = {"/tmp/legacy_store": "runs", "/tmp/fixture_cache": "cache",
              "/tmp/legacy_grid/legacy.yaml": "legacy.yaml"}
pytestmark = pytest.mark.slow


@pytest.fixture
def legacy(tmp_path) -> Path:
    exp = tmp_path / "runs" / "legacy"
    shutil.copytree(LEGACY, exp)
    shutil.copy(ROOT / "tests" / "data" / "legacy_sweep.yaml", tmp_path / "legacy.yaml")
    for path in exp.rglob("*.json"):
        if path.read_bytes()[:1] not in (b"{", b"["):
            continue  # Tune's basic-variant state: a pickle named .json
        text = path.read_text()
        for old, new in WRITTEN_IN.items():
            text = text.replace(old, str(tmp_path / new))
        path.write_text(text)
    return exp


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "SEGSWEEP_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _rows(exp: Path) -> dict[str, list[int]]:
    return {trial.name: [json.loads(line)["epoch"] for line in
                         (trial / "result.json").read_text().splitlines() if line.strip()]
            for trial in sorted(exp.iterdir()) if (trial / "result.json").is_file()}


def test_a_sweep_stored_by_the_flat_layout_loads_reports_and_resumes(legacy, tmp_path):
    from segmodels import model_from_checkpoint

    for checkpoint in legacy.glob("*/checkpoint_*/checkpoint.pt"):
        model, state = model_from_checkpoint(checkpoint)
        assert state["epoch"] == 2 and sum(p.numel() for p in model.parameters()) > 0
    before = _rows(legacy)
    assert list(before.values()) == [[1, 2], [1, 2]]

    report = _run(["-m", "analysis", str(legacy)], tmp_path)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    assert (legacy / "report" / "report.html").is_file()
    assert "unet/aug" in (legacy / "report" / "trials.csv").read_text()

    resumed = _run(["tune_app.py", "--name", "legacy", "--storage", str(tmp_path / "runs"),
                    "--resume", "--num-cpus", "2"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Ranking" in resumed.stdout
    assert _rows(legacy) == before  # a finished sweep resumes to nothing to train
