"""What the CLI prints when a sweep ends: the ranking, the baseline, where results are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from segmodels import metrics
from segmodels.data import NUM_CLASSES, Split
from sweeps.settings import prefer_quiet_cpu_ms

COLUMNS = {
    "point": "model", "best_val_miou": "best mIoU", "best_epoch": "best epoch",
    "epoch": "epochs", "train_minutes": "train min", "inference_ms_cpu": "CPU ms/frame",
    "inference_ms_gpu": "GPU ms/frame", "size_mb": "size MB", "status": "status",
}
MISSING = "MISSING"  # Tune remembers the trial, but storage holds none of its results


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


def _has_stored_results(result) -> bool:
    """Tune keeps a trial's last metrics in its experiment state even after the trial's folder
    is deleted (or its result.json was never written); only the rows read back from storage
    prove what it trained."""
    rows = result.metrics_dataframe
    return rows is not None and not rows.empty


def trial_status(result) -> str:
    """ERROR, MISSING, DIVERGED or done; a deleted errored trial loses its error file too."""
    if result.error:
        return "ERROR"
    if not _has_stored_results(result):
        return MISSING
    return "DIVERGED" if (result.metrics or {}).get("diverged") else "done"


def failed_points(results) -> list[str]:
    """Grid labels of the trials that ended in ERROR (retries used up)."""
    return [str((r.metrics or {}).get("point") or (r.config or {}).get("point") or r.path)
            for r in results if trial_status(r) == "ERROR"]


def _row(result) -> dict:
    """Tune's last metrics, or only the trial's name when nothing in storage backs them."""
    row = dict(result.metrics or {})
    status = trial_status(result)
    if status == MISSING:
        point = row.get("point") or (row.get("config") or {}).get("point")
        row = {"point": point or Path(result.path).name}
    return {**row, "status": status}


def ranking_table(results, cpu_inference: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per trial from Tune's ResultGrid: finished trials by best mIoU, then the rest.

    ``cpu_inference`` (grid label -> {"ms": ...}): the sweep's one-model-at-a-time timings,
    which replace the trials' own (sweep trials leave CPU timing to it).
    """
    frame = pd.DataFrame([_row(result) for result in results])
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    if cpu_inference:
        frame["inference_ms_cpu"] = prefer_quiet_cpu_ms(frame["point"], frame["inference_ms_cpu"],
                                                        cpu_inference)
    for column in ("best_epoch", "epoch"):  # integers, also beside a diverged (NaN) trial
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    frame["unfinished"] = frame["status"].ne("done")  # an errored best mIoU is not a win
    frame = frame.sort_values(["unfinished", "best_val_miou"], ascending=[True, False],
                              na_position="last", kind="stable")
    return frame[list(COLUMNS)].rename(columns=COLUMNS)


def print_summary(results, prepared) -> None:
    table = ranking_table(results, getattr(prepared, "cpu_inference", None))
    baseline = constant_predictor_miou(prepared.data.val)
    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print("\nRanking (best val mIoU first):")
        print(table.to_string(index=False))
    if table["status"].eq(MISSING).any():
        print(f"{MISSING}: no results in storage (trial folder deleted or never written); "
              "not ranked")
    print(f"\nConstant-prediction baseline mIoU: {baseline:.3f}")
    print(f"Results: {prepared.settings.experiment_path()}")
