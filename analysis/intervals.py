"""Intervals from a stored sweep's per-image evidence: how much its validation set can tell.

Each trial keeps the per-image confusion counts of its best epoch beside its best checkpoint
(``segmodels.training.IMAGE_CONFUSIONS_FILE``). From them:

- ``image_intervals``: every trial's best mIoU with a 95% percentile-bootstrap interval over
  the validation images, in the trial's own mIoU definition (``miou_definition``: global or
  per image), so a single-seed sweep still says how precisely its scores are known;
- ``pair_difference``: the difference of two trials' mIoUs with a paired bootstrap interval
  (the same image indices resampled for both: what the images share cancels);
- ``tied_with_best``: the trials no paired test can tell from the best, Holm-adjusted over the
  comparisons made.

A sweep stored before trials kept the evidence has none: its intervals are unavailable (nan,
with the reason), and the callers fall back to the stated margin. Methods and references:
``analysis.statistics`` and docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.loading import Experiment
from analysis.statistics import (
    Interval,
    bootstrap_miou,
    holm,
    paired_bootstrap_difference,
    paired_bootstrap_normal_p,
)

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
UNAVAILABLE = "unavailable: the trial kept no per-image evidence (stored before it was kept)"
INTERVAL_COLUMNS = ("miou_low", "miou_high", "miou_interval", "val_images")


def definition_of(exp: Experiment, trial_id: str) -> str:
    """The mIoU definition the trial's ``best_val_miou`` uses."""
    return str(exp.configs.get(trial_id, {}).get("miou_definition") or "global")


def image_intervals(exp: Experiment, trial_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per trial (indexed by trial_id; ``trial_ids``: only those, default all):
    ``miou_low``, ``miou_high`` (nan when unavailable), ``miou_interval`` (how it was
    obtained, or why not) and ``val_images``."""
    rows = {}
    for trial_id in exp.trials["trial_id"] if trial_ids is None else trial_ids:
        cms = exp.image_confusions(trial_id)
        if cms is None or len(cms) == 0:
            rows[trial_id] = (np.nan, np.nan, UNAVAILABLE, 0)
            continue
        try:
            interval = bootstrap_miou(cms, definition_of(exp, trial_id), CONFIDENCE)
        except ValueError as exc:  # e.g. a validation image without a labelled pixel
            rows[trial_id] = (np.nan, np.nan, f"unavailable: {exc}", len(cms))
            continue
        rows[trial_id] = (interval.low, interval.high, interval.method, len(cms))
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(INTERVAL_COLUMNS))


def with_intervals(exp: Experiment) -> pd.DataFrame:
    """The trials table with ``INTERVAL_COLUMNS`` added."""
    return exp.trials.join(image_intervals(exp), on="trial_id")


def _paired(exp: Experiment, a: str, b: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    cms_a, cms_b = exp.image_confusions(a), exp.image_confusions(b)
    definition = definition_of(exp, a)
    if (cms_a is None or cms_b is None or cms_a.shape != cms_b.shape
            or definition != definition_of(exp, b)):
        return None
    return cms_a, cms_b, definition


def pair_difference(exp: Experiment, a: str, b: str) -> Interval | None:
    """mIoU(a) - mIoU(b) with its paired bootstrap interval over the validation images both
    were scored on; None when either lacks the evidence (or they were scored differently)."""
    paired = _paired(exp, a, b)
    if paired is None:
        return None
    try:
        return paired_bootstrap_difference(*paired, confidence=CONFIDENCE)
    except ValueError:  # e.g. a validation image without a labelled pixel
        return None


def tied_with_best(exp: Experiment, trial_ids: list[str], scores: pd.Series) -> set[str] | None:
    """The best of ``trial_ids`` (by ``scores``, indexed by trial_id) and the trials after it,
    in score order, up to the first whose difference from the best a paired bootstrap test
    detects (normal approximation, Holm-adjusted over the len - 1 comparisons at ``ALPHA``): a
    group never skips a trial, so a lower score never ranks above a higher one. None when any
    of them lacks the evidence."""
    ranked = scores.loc[trial_ids].astype(float).dropna().sort_values(ascending=False,
                                                                         kind="stable")
    if ranked.empty:
        return set()
    best, others = ranked.index[0], list(ranked.index[1:])
    p_values = []
    for other in others:
        paired = _paired(exp, best, other)
        if paired is None:
            return None
        try:
            p_values.append(paired_bootstrap_normal_p(*paired))
        except ValueError:
            return None
    tied = {best}
    for other, p in zip(others, holm(p_values) if p_values else []):
        if p <= ALPHA:
            break
        tied.add(other)
    return tied


def tie_groups(exp: Experiment, trials: pd.DataFrame) -> dict[str, list[list[str]]] | None:
    """Best val mIoU's rank groups by test, as model names, best first: the first group is the
    best and every trial ``tied_with_best`` it; the next starts at the best of the rest, and so
    on. None when a trial lacks per-image evidence (the rankings then use the stated margin)."""
    scored = trials.dropna(subset=["best_val_miou"])
    if len(scored) < 2:
        return None  # nothing was tested: the rankings say so, not "by test"
    scores = scored.set_index("trial_id")["best_val_miou"].astype(float)
    names = scored.set_index("trial_id")["name"].astype(str)
    left = list(scores.sort_values(ascending=False, kind="stable").index)
    groups = []
    while left:
        tied = tied_with_best(exp, left, scores)
        if tied is None:
            return None
        groups.append([names[t] for t in left if t in tied])
        left = [t for t in left if t not in tied]
    return {"best_val_miou": groups}
