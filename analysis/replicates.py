"""Seeds as replicates: trials whose settings differ only in their seed are one grid point
trained several times (``--seeds N``), and its answer is their mean with an interval.

- ``point_table``: one row per point: seeds, mean best mIoU and a 95% interval. With several
  seeds that all kept their per-image evidence, the interval covers seeds and validation images
  together (``analysis.statistics.combine_seed_and_image``); with several seeds without it, the
  Student-t interval over seeds; with one seed, the image bootstrap of that trial.
- ``seed_matched_difference``: a switch (augmentation, ASPP) compared over seed-matched pairs,
  the t-interval of the mean difference (the seeds are the pairs).

Methods and references: ``analysis.statistics``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from analysis.comparisons import NOT_COMPARED, SwitchPair
from analysis.intervals import CONFIDENCE, UNAVAILABLE, definition_of, image_intervals
from analysis.loading import Experiment
from analysis.statistics import (
    Interval,
    bootstrap_miou,
    combine_seed_and_image,
    paired_t_difference,
    t_interval,
)

POINT_COLUMNS = ("point", "seeds", "best_val_miou", "miou_low", "miou_high", "miou_interval",
                 "trial_ids")
_SEED_IN_NAME = re.compile(r"/seed=-?\d+")


def point_key(config: dict[str, Any]) -> str:
    """What makes a trial's point: every setting but its seed (and how it ran)."""
    rest = {k: v for k, v in config.items() if k != "seed" and k not in NOT_COMPARED}
    return json.dumps(rest, sort_keys=True, default=str)


def point_name(trial_name: str) -> str:
    """A trial's name without its seed: ``unet/aug/seed=1`` -> ``unet/aug``."""
    return _SEED_IN_NAME.sub("", trial_name)


def replicate_groups(exp: Experiment) -> dict[str, list[str]]:
    """Point key -> its finished trials' ids, in the trials table's order."""
    groups: dict[str, list[str]] = {}
    for trial_id in exp.finished["trial_id"]:
        groups.setdefault(point_key(exp.configs.get(trial_id, {})), []).append(trial_id)
    return groups


def has_replicates(exp: Experiment) -> bool:
    """Some point trained with more than one seed."""
    return any(len({seed_of(exp, t) for t in ids}) > 1 for ids in replicate_groups(exp).values())


def _point_interval(exp: Experiment, trial_ids: list[str], scores: pd.Series) -> Interval:
    definition = definition_of(exp, trial_ids[0])
    evidence = [exp.image_confusions(t) for t in trial_ids]
    complete = all(e is not None for e in evidence) and len({e.shape for e in evidence}) == 1
    try:
        if complete and len(trial_ids) > 1:
            return combine_seed_and_image(np.stack(evidence), definition, CONFIDENCE)
        if complete:
            return bootstrap_miou(evidence[0], definition, CONFIDENCE)
    except ValueError:  # e.g. a validation image without a labelled pixel
        pass
    if len(trial_ids) > 1:
        return t_interval(scores.loc[trial_ids].astype(float).to_numpy(), CONFIDENCE)
    value = float(scores.loc[trial_ids[0]])
    return Interval(value, np.nan, np.nan, UNAVAILABLE, 1, CONFIDENCE)


def point_table(exp: Experiment) -> pd.DataFrame:
    """One row per point, best mean mIoU first (see the module docstring)."""
    scores = exp.trials.set_index("trial_id")["best_val_miou"]
    names = exp.trials.set_index("trial_id")["name"].astype(str)
    rows = []
    for trial_ids in replicate_groups(exp).values():
        interval = _point_interval(exp, trial_ids, scores)
        rows.append({"point": point_name(names[trial_ids[0]]),
                     "seeds": len(trial_ids), "best_val_miou": interval.estimate,
                     "miou_low": interval.low, "miou_high": interval.high,
                     "miou_interval": interval.method, "trial_ids": " ".join(trial_ids)})
    table = pd.DataFrame(rows, columns=list(POINT_COLUMNS))
    return table.sort_values("best_val_miou", ascending=False, kind="stable",
                             ignore_index=True)


def seed_matched_difference(exp: Experiment, pairs: list[SwitchPair]) -> Interval | None:
    """mIoU(on) - mIoU(off) over the seed-matched ``pairs`` of one subject (one pair per seed):
    the t-interval of the mean difference; None with fewer than two pairs."""
    scores = exp.trials.set_index("trial_id")["best_val_miou"].astype(float)
    pairs = [p for p in pairs if np.isfinite(scores[p.on]) and np.isfinite(scores[p.off])]
    if len(pairs) < 2:  # a seed whose trial failed or has not reported is left out
        return None
    on = scores.loc[[p.on for p in pairs]].to_numpy()
    off = scores.loc[[p.off for p in pairs]].to_numpy()
    return paired_t_difference(on, off, CONFIDENCE)


def seed_of(exp: Experiment, trial_id: str) -> Any:
    return exp.configs.get(trial_id, {}).get("seed")


def describe_evidence(exp: Experiment) -> str:
    """The report's first words on uncertainty: seeds and images behind the answers, and the
    size of difference they can detect."""
    done = exp.finished
    if done.empty:
        return "no trial has reported yet."
    seeds = sorted({exp.configs.get(t, {}).get("seed") for t in done["trial_id"]} - {None})
    table = image_intervals(exp).loc[done["trial_id"]]
    known = table.dropna(subset=["miou_low", "miou_high"])
    replicates = max(len({seed_of(exp, t) for t in ids}) for ids in replicate_groups(exp).values())
    if replicates > 1:
        text = (f"{len(done)} trial(s): each point trained with up to {replicates} seeds "
                f"({', '.join(map(str, seeds))}), so its mean carries an interval over seeds "
                "(Points over seeds) and switch verdicts pair the seeds. ")
    else:
        text = (f"{len(done)} trial(s), trained with seed(s) {', '.join(map(str, seeds))}: "
                "each point is one training run, so no interval here covers what another seed "
                "would give (a reseed can move a point by several hundredths on small data; "
                "--seeds 3 trains each point three times). ")
    if known.empty:
        return text + ("No trial kept per-image evidence (the sweep was stored before trials "
                       "kept it): no interval is available, and verdicts fall back to the "
                       "stated margin.")
    half = (known["miou_high"] - known["miou_low"]) / 2
    text += (f"{int(known['val_images'].max())} validation images behind each score; each best "
             f"mIoU carries a {CONFIDENCE:.0%} percentile-bootstrap interval over those images "
             f"(half-widths {half.min():.3f} to {half.max():.3f}), and a verdict names a winner "
             "only when the paired bootstrap interval of the difference excludes 0 (pairing on "
             "the same images makes that interval narrower than the two trials' own: it, not "
             "these half-widths, decides).")
    missing = len(table) - len(known)
    if missing:
        text += f" {missing} trial(s) kept no per-image evidence: their intervals are unavailable."
    return text


def interval_lines(exp: Experiment) -> list[str]:
    """The CLI's ranking with error bars: each trial's best mIoU with its 95% interval over the
    validation images, best first; with seeds, each point's mean with its interval first."""
    lines = []
    if has_replicates(exp):
        lines.append("Points over seeds (mean best val mIoU, 95% interval):")
        for _, p in point_table(exp).iterrows():
            interval = (f"[{p['miou_low']:.3f}, {p['miou_high']:.3f}]"
                        if pd.notna(p["miou_low"]) else "(interval unavailable)")
            lines.append(f"  {p['point']}: {p['best_val_miou']:.3f} {interval} "
                         f"over {p['seeds']} seed(s)")
    table = image_intervals(exp).join(exp.trials.set_index("trial_id")[["name", "best_val_miou"]])
    table = table.dropna(subset=["best_val_miou"]).sort_values("best_val_miou", ascending=False,
                                                                kind="stable")
    if table["miou_low"].notna().any():
        lines.append("Best val mIoU with its 95% interval over the validation images "
                     "(what another validation set of this size could give):")
        for _, t in table.iterrows():
            interval = (f"[{t['miou_low']:.3f}, {t['miou_high']:.3f}]" if pd.notna(t["miou_low"])
                        else "(unavailable)")
            lines.append(f"  {t['name']}: {t['best_val_miou']:.3f} {interval}")
    return lines
