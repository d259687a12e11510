"""Fake stored experiments with known per-image evidence, for the analysis' interval tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.loading import Experiment
from analysis.statistics import miou
from segmodels.training import IMAGE_CONFUSIONS_FILE, save_image_confusions

K, N = 4, 40


def fake_images(rng: np.random.Generator, accuracy: float) -> np.ndarray:
    """(N, K, K) counts of N images of 400 pixels whose classes are predicted right with
    probability ``accuracy`` per image (drawn around it), else as a random other class."""
    cms = np.zeros((N, K, K), dtype=np.int64)
    for i in range(N):
        target = rng.integers(0, K, 400)
        right = rng.random(400) < np.clip(rng.normal(accuracy, 0.05), 0, 1)
        pred = np.where(right, target, (target + rng.integers(1, K, 400)) % K)
        np.add.at(cms[i], (target, pred), 1)
    return cms


def fake_experiment(tmp_path: Path, evidence: dict[str, np.ndarray | None]) -> Experiment:
    rows = []
    for trial_id, cms in evidence.items():
        folder = tmp_path / trial_id / "checkpoint_000003"
        folder.mkdir(parents=True)
        if cms is not None:
            save_image_confusions(folder / IMAGE_CONFUSIONS_FILE, cms)
        score = float(miou(cms, "global")) if cms is not None else 0.5
        rows.append({"trial_id": trial_id, "name": f"model-{trial_id}", "epochs_done": 3,
                     "epochs_planned": 3, "status": "TERMINATED", "best_val_miou": score,
                     "best_epoch": 3, "best_checkpoint": str(folder / "checkpoint.pt"),
                     "best_checkpoint_epoch": 3})
    trials = pd.DataFrame(rows)
    configs = {t: {"model": t, "miou_definition": "global", "seed": 0} for t in evidence}
    return Experiment(tmp_path, {}, trials, pd.DataFrame(), configs)
