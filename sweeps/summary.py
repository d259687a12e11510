"""What the CLI prints when a sweep ends: the ranking, the baseline, where results are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from segmodels import metrics
from segmodels.data import NUM_CLASSES, Split

COLUMNS = {
    "point": "model", "best_val_miou": "best mIoU", "best_epoch": "best epoch",
    "epoch": "epochs", "train_minutes": "train min", "inference_ms_cpu": "CPU ms/frame",
    "inference_ms_gpu": "GPU ms/frame", "size_mb": "size MB", "status": "status",
}


def constant_predictor_miou(val: Split, num_classes: int = NUM_CLASSES) -> float:
    """mIoU of the best single-class prediction everywhere: the floor a model must beat."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for mask in val.masks:
        counts += np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
    best = 0.0
    for c in range(num_classes):
        cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        cm[:, c] = torch.from_numpy(counts)
        best = max(best, metrics.mean_iou(cm))
    return best


def ranking_table(results) -> pd.DataFrame:
    """One row per trial, best mIoU first, from Tune's ResultGrid."""
    rows = []
    for result in results:
        row = dict(result.metrics or {})
        row["status"] = ("ERROR" if result.error else
                         "DIVERGED" if row.get("diverged") else "done")
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    for column in ("best_epoch", "epoch"):  # integers, also beside a diverged (NaN) trial
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    frame = frame[list(COLUMNS)].rename(columns=COLUMNS)
    return frame.sort_values("best mIoU", ascending=False, na_position="last")


def print_summary(results, prepared) -> None:
    table = ranking_table(results)
    baseline = constant_predictor_miou(prepared.data.val)
    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print("\nRanking (best val mIoU first):")
        print(table.to_string(index=False))
    print(f"\nConstant-prediction baseline mIoU: {baseline:.3f}")
    print(f"Results: {prepared.settings.experiment_path()}")
