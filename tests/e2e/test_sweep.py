"""End-to-end sweeps through the CLI, as a user runs them (slow: each starts Ray)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import results

ROOT = Path(__file__).resolve().parents[2]
TINY_FLAGS = ["--epochs", "2", "--crop-size", "64", "--batch-size", "4",
              "--inference-repeats", "1", "--inference-size", "64x48", "--no-report",
              "--no-dashboard"]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


def run_app(*args: str, timeout: int = 420) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "tune_app.py"), *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def trials(exp: Path) -> dict[str, list[dict]]:
    """point label -> reported rows, read from what Tune stored (while Tune may be rewriting
    it: a file caught mid-write is skipped, a partial last line left out)."""
    return results(exp)


def _grid(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return str(path)


TINY_UNET = "fixed:\n  model_kwargs: {min_channels: 4, max_channels: 16}\n"


def test_the_homework_grid_with_three_seeds_answers_with_intervals(homework_seeds):
    """The course's grid, each point trained with 3 seeds (18 trials): every trial trains its
    full epochs (a comparison grid runs FIFO by default, so ASHA cannot cut a point short and
    skew the answers), keeps its per-image evidence, and the CLI and the report answer per
    point with a mean and an interval, the switch questions over seed-matched pairs."""
    proc, exp = homework_seeds, homework_seeds.exp
    assert "scheduler FIFO (the default for a comparison" in proc.stdout
    assert "SYNTHETIC" in proc.stdout and "Ranking" in proc.stdout
    # Every trial's history and summary are stored: each epoch's row carries these.
    for rows in trials(exp).values():
        for key in ("train_loss", "val_loss", "val_miou", "val_accuracy",
                    "val_mean_class_recall", "val_iou_road", "best_val_miou", "best_epoch",
                    "train_minutes", "size_mb", "params", "inference_ms_cpu", "node_id",
                    "hostname"):
            assert key in rows[-1], key
    assert len(list(exp.glob("*/checkpoint_*/checkpoint.pt"))) >= 18
    epochs = {label: [r["epoch"] for r in rows] for label, rows in trials(exp).items()}
    from sweeps.grids import load_grid

    points = load_grid("homework").labels
    assert sorted(epochs) == sorted(f"{p}/seed={s}" for p in points for s in range(3))
    assert all(e == [1, 2] for e in epochs.values()), epochs
    assert len(list(exp.glob("*/checkpoint_*/image_confusions.npy"))) >= 18
    meta = json.loads((exp / "segsweep.json").read_text())
    assert meta["settings"]["scheduler"] == "fifo" and "full epochs" in meta["scheduler_reason"]
    assert meta["settings"]["seeds"] == 3 and meta["data"]["synthetic"] is True
    assert len(meta["points"]) == 18
    # The CLI: one ranked line per point with its interval over 3 seeds, then every trial's.
    head = "Points over seeds (mean best val mIoU, 95% interval; "
    assert head in proc.stdout
    block = proc.stdout.split(head, 1)[1].splitlines()[1:1 + len(points)]
    assert sorted(line.split(": ")[0].split(". ")[-1].strip() for line in block) == sorted(points)
    assert all(re.search(r": \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] over 3 seed", line)
               for line in block), block
    # The report: a row per point, the course's two switch questions over seed-matched pairs,
    # and the rankings over points.
    report = (exp / "report" / "report.html").read_text()
    assert "Points over seeds" in report and report.count("Verdict over 3 seeds") >= 2
    assert "validation images behind each score" in report
    assert "Main effects" in report and "bands: their range (lowest to highest)" in report
    rankings = (exp / "report" / "rankings.md").read_text()
    assert rankings.startswith("# Rankings of the points (mean over their seeds)")
    assert "seed-matched test over seeds and the shared validation images" in rankings
    import pandas as pd

    ranked = pd.read_csv(exp / "report" / "rankings.csv")
    assert sorted(ranked.loc[ranked["axis"] == "best_val_miou", "name"]) == sorted(points)
    table = pd.read_csv(exp / "report" / "trials.csv")
    assert len(table) == 18
    assert table["miou_low"].notna().all() and (table["miou_low"] <= table["best_val_miou"]).all()


def test_asha_stops_a_hopeless_trial_early(tmp_path, tiny_dataset_dir):
    # Trials run one after the other (2 CPUs each on 2 CPUs): the good one sets the rung,
    # the one that cannot learn (lr 1e-9) falls below it at the first rung and is stopped.
    grid = _grid(tmp_path, "axes:\n  model: [unet]\n  augment: [false]\n  lr: [0.01, 1.0e-9]\n"
                 + TINY_UNET + "  crops_per_image: 4\n")
    run_app("--grid", grid, "--data", str(tiny_dataset_dir), *TINY_FLAGS, "--epochs", "4",
            "--scheduler", "asha", "--grace-period", "1", "--reduction-factor", "2",
            "--cpus-per-trial", "2", "--num-cpus", "2", "--storage", str(tmp_path))
    epochs = {point: len(rows) for point, rows in trials(tmp_path / "grid").items()}
    good = next(p for p in epochs if "lr=0.01" in p)
    bad = next(p for p in epochs if "lr=1e-09" in p)
    assert epochs[good] == 4 and epochs[bad] < 4


def test_killed_sweep_resumes_without_retraining_finished_trials(tmp_path, tiny_dataset_dir):
    """One point with --seeds 2, killed once seed 0 finished and seed 1 is mid-way: the resume
    trains only what is left, and both replicates reach the answer."""
    grid = _grid(tmp_path, "axes:\n  model: [unet]\n  augment: [false]\n" + TINY_UNET)
    args = ["--grid", grid, "--seeds", "2", "--data", str(tiny_dataset_dir), *TINY_FLAGS,
            "--epochs", "6",
            "--scheduler", "fifo", "--cpus-per-trial", "2", "--num-cpus", "2",
            "--storage", str(tmp_path)]
    driver = subprocess.Popen([sys.executable, str(ROOT / "tune_app.py"), *args], cwd=ROOT,
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    exp = tmp_path / "grid"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:  # kill once one trial is done and the other is mid-way
            found = trials(exp).values() if exp.exists() else []
            epochs = sorted((len(rows) for rows in found), reverse=True)
            if len(epochs) == 2 and epochs[0] == 6 and 2 <= epochs[1] < 6:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"sweep did not reach the kill point: {epochs}")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = trials(exp)
    finished = next(p for p, rows in before.items() if len(rows) == 6)
    time.sleep(2)
    proc = run_app(*args, "--resume")
    after = trials(exp)
    assert after[finished] == before[finished]  # not trained again
    unfinished = next(p for p in after if p != finished)
    epochs = [r["epoch"] for r in after[unfinished]]
    assert epochs[-1] == 6, (epochs, proc.stdout[-4000:], proc.stderr[-4000:])
    resumed = epochs[len(before[unfinished]):]
    assert resumed and resumed[0] > 1  # continued from a checkpoint, not from scratch
    assert sorted(after) == ["unet/no-aug/seed=0", "unet/no-aug/seed=1"]
    assert re.search(r"1\. unet/no-aug: \d\.\d{3} \[[^]]+\] over 2 seed", proc.stdout), \
        proc.stdout[-3000:]
