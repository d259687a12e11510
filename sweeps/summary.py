"""What the CLI prints when a sweep ends: the ranking, the baseline, where results are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeps import objectives
from sweeps.equal_work import PROJECTED, is_projected, projected_minutes
from sweeps.search import POINT_KEY, trial_label
from sweeps.settings import prefer_quiet_ms

COLUMNS = {  # "trial": its label with searched values; "point" (the grid label) stays hidden
    "trial": "model", "best_val_miou": "best mIoU", "best_epoch": "best epoch",
    "epoch": "epochs", "epochs_planned": "planned", "train_minutes": "train min",
    PROJECTED: "train min (all epochs, projected)", "inference_ms_cpu": "CPU ms/frame",
    "inference_ms_gpu": "GPU ms/frame", "size_mb": "size MB", "status": "status",
}
MISSING = "MISSING"  # Tune remembers the trial, but storage holds none of its results
REJECTED = "REJECTED"  # its architecture is over a budget: measured, never trained
BEST_SCORE = "best_val_miou"


def best_first(trials: pd.DataFrame, finished: pd.Series) -> pd.DataFrame:
    """The one meaning of "the best trial" (the CLI ranking, the report's examples): finished
    trials first, by best val mIoU high to low, ties in the table's order; a trial that did not
    finish (its best mIoU may come from a diverged or errored run) or has no score comes after.
    ``finished``: a boolean per row of ``trials``."""
    return (trials.assign(_unfinished=~finished.astype(bool))
            .sort_values(["_unfinished", BEST_SCORE], ascending=[True, False],
                         na_position="last", kind="stable")
            .drop(columns="_unfinished"))


def _has_stored_results(result) -> bool:
    """Tune keeps a trial's last metrics in its experiment state even after the trial's folder
    is deleted (or its result.json was never written); only the rows read back from storage
    prove what it trained."""
    rows = result.metrics_dataframe
    return rows is not None and not rows.empty


def trial_status(result) -> str:
    """ERROR, MISSING, REJECTED, DIVERGED or done; a deleted errored trial loses its error
    file too."""
    if result.error:
        return "ERROR"
    if not _has_stored_results(result):
        return MISSING
    if (result.metrics or {}).get(objectives.REJECTED):
        return REJECTED
    return "DIVERGED" if (result.metrics or {}).get("diverged") else "done"


def failed_points(results) -> list[str]:
    """Names of the trials that ended in ERROR (retries used up): grid label + searched values."""
    return [_name(r) for r in results if trial_status(r) == "ERROR"]


def _point(result) -> str | None:
    """The trial's grid label, from Tune's config (or its last metrics)."""
    return (result.config or {}).get(POINT_KEY) or (result.metrics or {}).get(POINT_KEY)


def _name(result) -> str:
    """The trial's grid label with the values a search proposed for it (lr, crop size), from
    Tune's config; its folder's name when Tune holds neither."""
    point = _point(result)
    if not point:
        return Path(result.path).name
    return trial_label({**(result.config or {}), POINT_KEY: point})


def _row(result) -> dict:
    """Tune's last metrics, or only the trial's name when nothing in storage backs them."""
    status = trial_status(result)
    row = dict(result.metrics or {}) if status != MISSING else {}
    return {**row, POINT_KEY: _point(result), "trial": _name(result), "status": status}


def ranking_table(results, cpu_inference: dict[str, dict] | None = None,
                  gpu_inference: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per trial from Tune's ResultGrid: finished trials by best mIoU, then the rest.

    ``cpu_inference`` (grid label -> {"ms": ...}): the sweep's one-model-at-a-time timings,
    which replace the trials' own (sweep trials leave CPU timing to it).
    """
    frame = pd.DataFrame([_row(result) for result in results])
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    for column, quiet in (("inference_ms_cpu", cpu_inference), ("inference_ms_gpu", gpu_inference)):
        if quiet:
            frame[column] = prefer_quiet_ms(frame["point"], frame[column], quiet)
    for column in ("best_epoch", "epoch", "epochs_planned"):  # integers, also beside NaN
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    frame[PROJECTED] = projected_minutes(frame["train_minutes"], frame["epoch"],
                                         frame["epochs_planned"])
    frame = best_first(frame, frame["status"].eq("done"))
    return frame[list(COLUMNS)].rename(columns=COLUMNS)


def print_summary(results, prepared) -> None:
    from segmodels.metrics import constant_predictor_miou  # torch: loaded here, not by readers

    table = ranking_table(results, getattr(prepared, "cpu_inference", None),
                          getattr(prepared, "gpu_inference", None))
    baseline = constant_predictor_miou(prepared.data.val)
    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        print("\nRanking (best val mIoU first):")
        print(table.to_string(index=False))
    short = is_projected(table["epochs"], table["planned"])
    if short.any():
        names = ", ".join(map(str, table.loc[short, "model"]))
        print(f"{COLUMNS[PROJECTED]}: minutes per trained epoch x planned epochs, so trials "
              f"compare at equal work ({names} trained fewer epochs than planned); 'train min' "
              "is the time each actually trained")
    rejected = table["status"].eq(REJECTED)
    if rejected.any():
        budgets = ", ".join(f"{k} {v:g}" for k, v in prepared.settings.budgets.items())
        print(f"{REJECTED}: over a budget ({budgets}), never trained: "
              f"{', '.join(map(str, table.loc[rejected, 'model']))}")
    if table["status"].eq(MISSING).any():
        print(f"{MISSING}: no results in storage (trial folder deleted or never written); "
              "not ranked")
    print(f"\nConstant-prediction baseline mIoU: {baseline:.3f}")
    print(f"Results: {prepared.settings.experiment_path()}")
