"""Main effects: what each grid axis (augmentation, ASPP, backbone, loss, ...) does to mIoU,
averaged over the other axes, with an interval: the question a researcher asks after a sweep.

For an axis with values ``ref, v1, v2, ...`` (``ref``: the first in sorted order), every pair of
trials equal in all settings but that axis, one at ``ref`` and one at ``v`` (seeds included,
so seeds pair too), gives one difference of best mIoU. The effect of ``v`` is their mean, with
the Student-t interval over the pairs when there are two or more; with one pair, the paired
bootstrap over the validation images where both trials kept their per-image evidence.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from analysis.comparisons import NOT_COMPARED
from analysis.intervals import CONFIDENCE, pair_difference
from analysis.loading import Experiment
from analysis.statistics import Interval, t_interval

AXES = ("model", "backbone", "aspp", "arch", "encoder", "augment", "pretrained", "loss")
EFFECT_COLUMNS = ("axis", "value", "versus", "pairs", "effect", "low", "high", "method")


def _rest(config: dict[str, Any], axis: str) -> str:
    rest = {k: v for k, v in config.items() if k != axis and k not in NOT_COMPARED}
    return json.dumps(rest, sort_keys=True, default=str)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def main_effects(exp: Experiment) -> pd.DataFrame:
    """One row per axis and non-reference value (see the module docstring); empty when no
    axis varies between otherwise equal trials."""
    done = exp.finished.dropna(subset=["best_val_miou"])
    scores = done.set_index("trial_id")["best_val_miou"].astype(float)
    configs = {t: exp.configs.get(t, {}) for t in done["trial_id"]}
    rows = []
    for axis in AXES:
        values = sorted({_text(c.get(axis)) for c in configs.values()} - {"null"})
        if len(values) < 2:  # "null": the axis does not apply (an encoder on UNet)
            continue
        by_rest: dict[str, dict[str, str]] = {}
        for trial_id, config in configs.items():
            by_rest.setdefault(_rest(config, axis), {}).setdefault(_text(config.get(axis)),
                                                                  trial_id)
        reference = values[0]
        for value in values[1:]:
            pairs = [(g[value], g[reference]) for g in by_rest.values()
                     if value in g and reference in g]
            if not pairs:
                continue
            interval = _effect(exp, pairs, scores)
            rows.append({"axis": axis, "value": value, "versus": reference,
                         "pairs": len(pairs), "effect": interval.estimate, "low": interval.low,
                         "high": interval.high, "method": interval.method})
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))


def _effect(exp: Experiment, pairs: list[tuple[str, str]], scores: pd.Series) -> Interval:
    differences = np.array([scores[a] - scores[b] for a, b in pairs])
    if len(pairs) > 1:
        interval = t_interval(differences, CONFIDENCE)
        return Interval(interval.estimate, interval.low, interval.high,
                        f"Student-t over {len(pairs)} matched pairs", len(pairs), CONFIDENCE)
    paired = pair_difference(exp, *pairs[0])
    if paired is not None:
        return paired
    return Interval(float(differences[0]), np.nan, np.nan,
                    "one matched pair without per-image evidence: no interval", 1, CONFIDENCE)


def effect_lines(effects: pd.DataFrame) -> list[str]:
    """One sentence per effect, naming a direction only when its interval excludes 0."""
    lines = []
    for _, e in effects.iterrows():
        interval = (f"[{e['low']:+.3f}, {e['high']:+.3f}]" if pd.notna(e["low"])
                    else "(no interval)")
        if pd.notna(e["low"]) and (e["low"] > 0 or e["high"] < 0):
            word = "raises" if e["low"] > 0 else "lowers"
            claim = f"{word} best val mIoU by {abs(e['effect']):.3f}"
        else:
            claim = f"changes best val mIoU by {e['effect']:+.3f}, no detectable effect"
        lines.append(f"{e['axis']} = {e['value']} (vs {e['versus']}) {claim} {interval}, "
                     f"over {e['pairs']} matched pair(s); {e['method']}.")
    return lines
