"""Full resolution end to end: the original FloodNet layout at 4000x3000, swept with
``--image-size 1000x750``. The trials train and validate on 1000x750 arrays, the report's
example crops are cut from them, and ``--resume`` and a later report load at the same size
without decoding anything (slow: one sweep of one trial, one epoch, about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from segmodels.data.synthetic_floodnet import generate_floodnet

pytestmark = pytest.mark.slow
BUILT_ONCE = ("sweep",)  # its tests share a worker (tests/conftest.py)
ROOT = Path(__file__).resolve().parents[2]
STORED, SIZE = (4000, 3000), (1000, 750)
N_TRAIN, N_VAL = 2, 1
FIXED = {"model_kwargs": {"min_channels": 4, "max_channels": 16}, "crops_per_image": 2,
         "inference_height": 64, "inference_width": 64, "log_images": 0}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("full_resolution")
    dataset = generate_floodnet(work / "floodnet", n_train=N_TRAIN, n_val=N_VAL,
                                width=STORED[0], height=STORED[1])
    grid = work / "fullres.yaml"
    grid.write_text(yaml.safe_dump({"axes": {"model": ["unet"]}, "fixed": FIXED}))
    env = {**os.environ, "SEGSWEEP_CACHE": str(work / "cache"), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)  # one local node, never someone else's cluster
    args = ["--grid", str(grid), "--data", str(dataset), "--image-size", "1000x750",
            "--epochs", "1", "--crop-size", "32", "--batch-size", "2", "--inference-repeats", "1",
            "--scheduler", "fifo", "--num-cpus", "2", "--no-dashboard",
            "--storage", str(work / "runs")]
    proc = subprocess.run([sys.executable, str(ROOT / "tune_app.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"work": work, "data": dataset, "exp": work / "runs" / "fullres"}


def test_the_trials_train_and_validate_on_the_shrunk_arrays(sweep):
    meta = json.loads((sweep["exp"] / "segsweep.json").read_text())
    assert meta["data"]["image_size"] == list(SIZE)
    assert (f"loaded to fit 1000x750 ({N_TRAIN + N_VAL} shrunk, from up to 4000x3000)"
            in meta["data"]["description"])
    (result,) = sweep["exp"].glob("*/result.json")
    rows = [json.loads(line) for line in result.read_text().splitlines() if line]
    assert [r["epoch"] for r in rows] == [1]
    # Whole validation images, every pixel labelled: the confusion counts each pixel once.
    assert int(np.sum(rows[0]["val_confusion"])) == N_VAL * SIZE[0] * SIZE[1]
    assert (sweep["exp"] / "report" / "report.html").is_file()


def test_the_reports_crops_come_from_the_shrunk_arrays(decodes, sweep, monkeypatch, tmp_path):
    """``python -m analysis`` later: the validation split at the sweep's size, from the cache."""
    import analysis.examples
    from analysis import build_report

    monkeypatch.setenv("SEGSWEEP_CACHE", str(sweep["work"] / "cache"))
    seen = {}

    def spy(exp, val, out_dir):
        seen["val"] = val
        seen["examples"] = real(exp, val, out_dir)
        return seen["examples"]

    real = analysis.examples.build_examples
    monkeypatch.setattr(analysis.examples, "build_examples", spy)
    before = decodes.count
    page = build_report(sweep["exp"], out_dir=tmp_path / "report").read_text()
    assert decodes.count == before  # the sweep's load filled the cache
    assert {img.shape for img in seen["val"].images} == {(SIZE[1], SIZE[0], 3)}
    crops = [c for ex in seen["examples"].classes for c in (ex.good, ex.failure) if c]
    assert crops
    for crop in crops:
        y0, x0, y1, x1 = crop.box
        assert 0 <= y0 < y1 <= SIZE[1] and 0 <= x0 < x1 <= SIZE[0], crop.box
    assert "loaded to fit 1000x750" in page


def test_resume_loads_at_the_sweeps_own_size(decodes, sweep, monkeypatch):
    from sweeps.prepare import prepare
    from sweeps.settings import SweepError, SweepSettings

    monkeypatch.setenv("SEGSWEEP_CACHE", str(sweep["work"] / "cache"))
    settings = SweepSettings(name="fullres", storage=str(sweep["work"] / "runs"), resume=True)
    before = decodes.count
    prepared = prepare(settings)
    assert decodes.count == before
    assert prepared.settings.image_size == SIZE
    assert {m.shape for m in prepared.data.train.masks} == {(SIZE[1], SIZE[0])}
    with pytest.raises(SweepError, match="--image-size 1000x750; drop --image-size"):
        prepare(SweepSettings(name="fullres", storage=str(sweep["work"] / "runs"), resume=True,
                              image_size=(500, 375)))
