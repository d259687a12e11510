"""Seeds as replicates: trials whose settings differ only in their seed are one grid point
trained several times (``--seeds N``), and its answer is their mean with an interval.

- ``point_table``: one row per point: seeds, mean best mIoU and a 95% interval. With several
  seeds that all kept their per-image evidence, the interval covers seeds and validation images
  together (``analysis.statistics.combine_seed_and_image``); with several seeds without it, the
  Student-t interval over seeds; with one seed, the image bootstrap of that trial.
- ``seed_matched_difference``: a switch (augmentation, ASPP) compared over seed-matched pairs,
  by the same test as any two points (``point_difference``).
- ``point_difference`` / ``point_tie_groups``: any two points compared over their seed-matched
  trials (seeds and validation images together where the evidence is kept), and the points no
  such test can tell from the best (Holm-adjusted): what the rankings use with seeds.
- ``point_frame``: the trials table averaged per point (name = the point), with the spread of
  its training time over seeds, for the rankings and the CLI.

Methods and references: ``analysis.statistics``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from analysis.comparisons import NOT_COMPARED, SwitchPair
from analysis.intervals import ALPHA, CONFIDENCE, UNAVAILABLE, definition_of, image_intervals
from analysis.loading import Experiment
from analysis.statistics import (
    Interval,
    bootstrap_miou,
    combine_seed_and_image,
    holm,
    paired_t_difference,
    paired_t_p_value,
    seed_image_difference,
    seed_image_difference_p,
    t_interval,
)
from sweeps.equal_work import PROJECTED

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
    """mIoU(on) - mIoU(off) over the seed-matched ``pairs`` of one subject (one pair per seed),
    the same test the rankings use (``point_difference``): seeds and shared validation images
    together where the trials kept their evidence, else the paired t over seeds. None with
    fewer than two scored pairs (a seed whose trial failed is left out)."""
    scores = exp.trials.set_index("trial_id")["best_val_miou"].astype(float)
    pairs = [p for p in pairs if np.isfinite(scores[p.on]) and np.isfinite(scores[p.off])]
    if len(pairs) < 2:
        return None
    tested = point_difference(exp, [p.on for p in pairs], [p.off for p in pairs])
    return tested[0] if tested is not None else None


def _seed_matched(exp: Experiment, ids_a: list[str], ids_b: list[str]) -> list[tuple[str, str]]:
    """(trial of A, trial of B) for every seed both points trained and scored, in seed order."""
    scores = exp.trials.set_index("trial_id")["best_val_miou"].astype(float)
    by_seed_a = {seed_of(exp, t): t for t in ids_a if np.isfinite(scores[t])}
    by_seed_b = {seed_of(exp, t): t for t in ids_b if np.isfinite(scores[t])}
    return [(by_seed_a[s], by_seed_b[s]) for s in sorted(set(by_seed_a) & set(by_seed_b), key=str)]


def point_difference(exp: Experiment, ids_a: list[str],
                     ids_b: list[str]) -> tuple[Interval, float] | None:
    """Mean mIoU(A) - mIoU(B) over the seeds both points trained, with its 95% interval and
    two-sided p-value: seeds and shared validation images together
    (``analysis.statistics.seed_image_difference``) where every trial kept its evidence, else
    the paired t over seeds; None with neither (one matched seed and no evidence)."""
    pairs = _seed_matched(exp, ids_a, ids_b)
    if not pairs:
        return None
    definition = definition_of(exp, pairs[0][0])
    evidence = [(exp.image_confusions(a), exp.image_confusions(b)) for a, b in pairs]
    shapes = {x.shape for pair in evidence for x in pair if x is not None}
    same_scoring = all(definition_of(exp, t) == definition for pair in pairs for t in pair)
    if all(x is not None for pair in evidence for x in pair) and len(shapes) == 1 and same_scoring:
        a, b = np.stack([e[0] for e in evidence]), np.stack([e[1] for e in evidence])
        try:
            return (seed_image_difference(a, b, definition, CONFIDENCE),
                    seed_image_difference_p(a, b, definition))
        except ValueError:  # e.g. a validation image without a labelled pixel
            pass
    if len(pairs) < 2:
        return None
    scores = exp.trials.set_index("trial_id")["best_val_miou"].astype(float)
    on = scores.loc[[a for a, _ in pairs]].to_numpy()
    off = scores.loc[[b for _, b in pairs]].to_numpy()
    return paired_t_difference(on, off, CONFIDENCE), paired_t_p_value(on, off)


POINT_TEST = ("a seed-matched test over seeds and the shared validation images cannot tell "
              "them apart (95%, Holm-adjusted over the comparisons with the group's best; the "
              "paired t over seeds where a trial kept no per-image evidence)")


def point_tie_groups(exp: Experiment, points: pd.DataFrame) -> dict[str, list[list[str]]] | None:
    """Mean best val mIoU's rank groups by test, as point names, best first (``points``: the
    ``point_table``): the best and the points after it, in mean order, up to the first whose
    difference from the best ``point_difference`` detects (Holm over the group's comparisons),
    so a group never skips a point; then the same from the best of the rest. None when a pair
    cannot be tested (the rankings then use the stated margin)."""
    scored = points.dropna(subset=["best_val_miou"]).sort_values(
        "best_val_miou", ascending=False, kind="stable")
    if len(scored) < 2:
        return None
    ids = {row["point"]: row["trial_ids"].split() for _, row in scored.iterrows()}
    left, groups = list(ids), []
    while left:
        best, others = left[0], left[1:]
        p_values = []
        for other in others:
            tested = point_difference(exp, ids[best], ids[other])
            if tested is None:
                return None
            p_values.append(tested[1])
        tied = [best]
        for other, p in zip(others, holm(p_values) if p_values else []):
            if p <= ALPHA:
                break
            tied.append(other)
        groups.append(tied)
        left = [p for p in left if p not in tied]
    return {"best_val_miou": groups}


def point_frame(exp: Experiment, points: pd.DataFrame | None = None) -> pd.DataFrame:
    """The finished trials averaged per point: one row per point named by it (``name``), its
    mean best val mIoU from ``point_table``, the mean of every other number, the fewest epochs
    any seed trained, and the training time's range over seeds (``train_minutes_low`` /
    ``_high``): what the rankings and the CLI compare when points have several seeds."""
    points = point_table(exp) if points is None else points  # its intervals are bootstraps
    trials = exp.trials.set_index("trial_id")
    rows = []
    for _, point in points.iterrows():
        own = trials.loc[point["trial_ids"].split()]
        row = own.select_dtypes("number").mean().to_dict()
        row.update(name=point["point"], seeds=point["seeds"],
                   best_val_miou=point["best_val_miou"], miou_low=point["miou_low"],
                   miou_high=point["miou_high"], trial_ids=point["trial_ids"])
        if "epochs_done" in own:
            row["epochs_done"] = own["epochs_done"].min()
        for column in ("train_minutes", PROJECTED):
            if column in own:
                row[f"{column}_low"], row[f"{column}_high"] = own[column].min(), own[column].max()
        rows.append(row)
    return pd.DataFrame(rows)


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


def _minutes(point: pd.Series) -> str:
    """"train 1.20 min (1.10-1.31 over seeds)": a point's training time with its spread."""
    column = PROJECTED if pd.notna(point.get(PROJECTED)) else "train_minutes"
    if pd.isna(point.get(column)):
        return ""
    low, high = point.get(f"{column}_low"), point.get(f"{column}_high")
    spread = f" ({low:.2f}-{high:.2f} over seeds)" if pd.notna(low) and high > low else ""
    return f", train {point[column]:.2f} min{spread}"


def point_lines(exp: Experiment) -> list[str]:
    """Each point's mean over seeds with its interval, ranked: points a seed-matched test
    cannot tell from the best of their group share its rank (Holm-adjusted)."""
    table = point_table(exp)
    frame = point_frame(exp, table).set_index("name")
    groups = point_tie_groups(exp, table)
    rank = ({p: r for r, group in enumerate(groups["best_val_miou"], 1) for p in group}
            if groups else {})
    if len(table) == 1:
        rank = {table["point"].iloc[0]: 1}
    how = ("same rank: no detectable difference from the best of the group (seed-matched "
           "test, Holm-adjusted)" if groups or len(table) == 1 else
           "not ranked by test: a pair had no seed-matched evidence")
    lines = [f"Points over seeds (mean best val mIoU, 95% interval; {how}):"]
    for _, p in table.iterrows():
        interval = (f"[{p['miou_low']:.3f}, {p['miou_high']:.3f}]" if pd.notna(p["miou_low"])
                    else "(interval unavailable)")
        place = f"{rank[p['point']]}. " if p["point"] in rank else "-  "
        lines.append(f"  {place}{p['point']}: {p['best_val_miou']:.3f} {interval} "
                     f"over {p['seeds']} seed(s){_minutes(frame.loc[p['point']])}")
    return lines


def interval_lines(exp: Experiment) -> list[str]:
    """The CLI's ranking with error bars: each trial's best mIoU with its 95% interval over the
    validation images, best first; with seeds, each point's mean with its interval first."""
    lines = point_lines(exp) if has_replicates(exp) else []
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
