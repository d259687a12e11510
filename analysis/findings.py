"""Short answers to the course's questions, written from the numbers (pure functions).

Every sentence quotes the figures it rests on, so a reader can check it against the plots, and
nothing is claimed that the numbers do not show (no "overfitting" unless validation loss really
rises while training loss falls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.comparisons import Pair, architecture
from analysis.rankings import AXES, COST_AXES, MIOU, pareto_front, rank_groups, ties

FINAL_METRICS = {"val_miou": "mIoU", "val_accuracy": "accuracy",
                 "val_mean_class_recall": "mean class recall"}
RISE = 0.02  # val loss this far (relative) above its minimum counts as rising


@dataclass(frozen=True)
class Overfit:
    epoch: int  # last epoch before validation loss starts rising
    val_min: float
    val_last: float
    train_at: float
    train_last: float


def overfitting(curve: pd.DataFrame, rise: float = RISE) -> Overfit | None:
    """Validation loss ends more than ``rise`` above its minimum (reached before the last
    epoch) while training loss kept falling since that minimum: the overfitting picture."""
    c = curve.dropna(subset=["train_loss", "val_loss"]).sort_values("epoch")
    if len(c) < 3:
        return None
    at, last = c.loc[c["val_loss"].idxmin()], c.iloc[-1]
    if (at["epoch"] < last["epoch"] and last["val_loss"] > at["val_loss"] * (1 + rise)
            and last["train_loss"] < at["train_loss"]):
        return Overfit(int(at["epoch"]), at["val_loss"], last["val_loss"], at["train_loss"],
                       last["train_loss"])
    return None


def loss_behaviour(name: str, curve: pd.DataFrame) -> str:
    """One sentence on how this trial's validation loss moved."""
    c = curve.dropna(subset=["val_loss"]).sort_values("epoch")
    if len(c) < 2:
        return f"{name}: {len(c)} epoch(s) so far, too few to see a trend."
    found = overfitting(c)
    if found:
        return (f"{name}: val loss rises after epoch {found.epoch} ({found.val_min:.3f} → "
                f"{found.val_last:.3f}) while train loss falls ({found.train_at:.3f} → "
                f"{found.train_last:.3f}): overfitting.")
    first, last = c.iloc[0], c.iloc[-1]
    best = c.loc[c["val_loss"].idxmin()]
    if best["epoch"] == last["epoch"]:
        return (f"{name}: val loss still falling at the last epoch ({first['val_loss']:.3f} → "
                f"{last['val_loss']:.3f}): no overfitting within {int(last['epoch'])} epochs.")
    return (f"{name}: val loss lowest at epoch {int(best['epoch'])} ({best['val_loss']:.3f}), "
            f"{last['val_loss']:.3f} at the end: flat, no clear overfitting.")


def roughness(curve: pd.DataFrame) -> float:
    """Mean epoch-to-epoch change of val loss relative to its mean: how jumpy the curve is."""
    v = curve.sort_values("epoch")["val_loss"].dropna().to_numpy()
    return float(np.mean(np.abs(np.diff(v))) / np.mean(v)) if len(v) > 2 else float("nan")


def _curves(history: pd.DataFrame, pair: Pair) -> dict[str, pd.DataFrame]:
    return {k: history[history["trial_id"] == k].sort_values("epoch") for k in (pair.off, pair.on)}


def compare_pair(trials: pd.DataFrame, history: pd.DataFrame, pair: Pair,
                 tolerance: float) -> list[str]:
    """Answers for one without/with comparison (course Tasks 1 and 2)."""
    t = trials.set_index("trial_id")
    off, on = t.loc[pair.off], t.loc[pair.on]
    s = pair.switch
    curves = _curves(history, pair)
    if off["epochs_done"] == 0 or on["epochs_done"] == 0:
        return [f"{pair.subject}: nothing to compare yet: {s.off} {off['status']} after "
                f"{off['epochs_done']} epochs, {s.on} {on['status']} after {on['epochs_done']}."]
    b_off, b_on = float(off[MIOU]), float(on[MIOU])
    lines = [f"{pair.subject}, {s.on}: best val mIoU {b_on:.3f} vs {b_off:.3f} {s.off} "
             f"({b_on - b_off:+.3f})."]
    final = {k: c.iloc[-1] for k, c in curves.items()}
    better = [label for col, label in FINAL_METRICS.items()
              if final[pair.on][col] > final[pair.off][col]]
    lines.append("At the last epoch: " + "; ".join(
        f"{label} {final[pair.on][col]:.3f} vs {final[pair.off][col]:.3f}"
        for col, label in FINAL_METRICS.items())
        + f" ({s.on} better on {len(better)} of {len(FINAL_METRICS)}).")
    for key, side in ((pair.off, s.off), (pair.on, s.on)):
        lines.append(loss_behaviour(f"{pair.subject} {side}", curves[key]))
    gaps = {k: final[k]["val_loss"] - final[k]["train_loss"] for k in final}
    lines.append(f"Val − train loss at the last epoch: {gaps[pair.off]:+.3f} {s.off}, "
                 f"{gaps[pair.on]:+.3f} {s.on}.")
    r_off, r_on = roughness(curves[pair.off]), roughness(curves[pair.on])
    if np.isfinite(r_off) and np.isfinite(r_on):
        calmer = s.on if r_on < r_off else s.off
        lines.append(f"Val loss moves {r_off:.1%} per epoch on average {s.off} vs {r_on:.1%} "
                     f"{s.on}: calmer {calmer}.")
    if ties(b_on, b_off, tolerance):
        lines.append(f"Verdict: no clear winner; best mIoUs are within {tolerance:.0%}.")
    else:
        winner = s.on if b_on > b_off else s.off
        lines.append(f"Verdict: {pair.subject} {winner} is better "
                     f"(best val mIoU {max(b_on, b_off):.3f} vs {min(b_on, b_off):.3f}).")
    lines += _caveats(off, on)
    return lines


def _caveats(*rows: pd.Series) -> list[str]:
    out = []
    for row in rows:
        if row["status"] != "TERMINATED" or row["epochs_done"] < row["epochs_planned"]:
            why = "stopped early by the scheduler" if row["stopped_early"] else row["status"]
            out.append(f"Provisional: {row['name']} has {row['epochs_done']} of "
                       f"{row['epochs_planned']} epochs ({why}).")
    return out


WINNER_WORDS = {MIOU: "Best mIoU", "size_mb": "Smallest", "inference_ms_cpu": "Fastest on CPU",
                "inference_ms_gpu": "Fastest on GPU", "train_minutes": "Fastest to train"}


def describe_tradeoffs(models: pd.DataFrame, tolerance: float) -> list[str]:
    """Who wins where (course Task 3): the winners per axis, the Pareto sets, each model's
    ranks."""
    lines, ranks = [], {name: [] for name in models["name"]}
    for column, axis in AXES.items():
        values = models.set_index("name")[column].astype(float)
        groups = rank_groups(values, axis.higher_is_better, tolerance)
        if not groups:
            continue
        tie = f" (tie within {tolerance:.0%})" if len(groups[0]) > 1 else ""
        lines.append(f"{WINNER_WORDS[column]}: " + " = ".join(
            f"{n} ({axis.format(values[n])})" for n in groups[0]) + tie + ".")
        for rank, group in enumerate(groups, 1):
            for name in group:
                ranks[name].append(f"#{rank} {axis.label}")
    for column in COST_AXES:
        front = pareto_front(models, column)
        if front:
            lines.append(f"Pareto-optimal for mIoU vs {AXES[column].label}: {', '.join(front)}.")
    lines += [f"{name}: {', '.join(r)}." for name, r in ranks.items() if r]
    return lines


NOISE = 0.2  # identical networks whose timings differ more than this: noisy measurements


def timing_noise(trials: pd.DataFrame, configs: dict[str, dict]) -> list[str]:
    """Identical networks must time the same; when they do not, the spread is measurement
    noise (trials timed while others ran on the same CPUs), and smaller differences between
    models mean nothing."""
    out = []
    done = trials[trials["epochs_done"] > 0]
    groups = done.groupby(done["trial_id"].map(lambda t: architecture(configs[t])))
    for column in ("inference_ms_cpu", "inference_ms_gpu"):
        for _, group in groups:
            values = group.set_index("name")[column].dropna()
            if len(values) < 2 or values.min() <= 0:
                continue
            spread = values.max() / values.min() - 1
            if spread > NOISE:
                out.append(f"Caution: the same network timed {values.min():.3g} ms "
                           f"({values.idxmin()}) and {values.max():.3g} ms ({values.idxmax()}) "
                           f"per frame ({column}): a {spread:.0%} spread from measurement noise "
                           "(concurrent trials share the CPUs); smaller differences between "
                           "models are not meaningful.")
    return out


def describe_baseline(models: pd.DataFrame, baseline: float | None) -> str:
    if baseline is None:
        return "Constant-predictor baseline: unknown (the dataset folder is not available)."
    below = models.loc[models[MIOU] <= baseline, "name"].tolist()
    verdict = (f"not above it (barely trained, or predicting one class): {', '.join(below)}"
               if below else "every model shown beats it")
    return (f"Constant-predictor baseline (one class everywhere): mIoU {baseline:.3f}; "
            f"{verdict}.")


def _augment_reason(off: pd.Series, on: pd.Series, curves: dict[str, pd.DataFrame]) -> list[str]:
    a, b = curves[off["trial_id"]].iloc[-1], curves[on["trial_id"]].iloc[-1]
    if a["train_loss"] >= b["train_loss"]:
        return []
    out = [f"Why: train loss ends lower without augmentation ({a['train_loss']:.3f} vs "
           f"{b['train_loss']:.3f}): the same crops every epoch are easier to fit, while "
           "augmented crops keep changing, which makes training harder and regularises it."]
    if overfitting(curves[off["trial_id"]]) and not overfitting(curves[on["trial_id"]]):
        out.append("Only the run without augmentation overfits: it memorises its training crops.")
    return out


SWITCH_REASONS = {"augment": _augment_reason}


def reasons(trials: pd.DataFrame, history: pd.DataFrame, pair: Pair) -> list[str]:
    """What the switch costs (size, inference, training time), and a reason where the numbers
    support one."""
    t = trials.set_index("trial_id", drop=False)
    off, on = t.loc[pair.off], t.loc[pair.on]
    if off["epochs_done"] == 0 or on["epochs_done"] == 0:
        return []
    s = pair.switch
    shown = COST_AXES if s.changes_model else ("train_minutes",)
    costs = [f"{AXES[c].label} {AXES[c].format(on[c])} vs {AXES[c].format(off[c])}"
             for c in shown if pd.notna(on[c]) and pd.notna(off[c])]
    out = [f"Cost {s.on} vs {s.off}: {'; '.join(costs)}."] if costs else []
    if not s.changes_model:
        out.append(f"The network is the same {s.off} and {s.on}, so size and inference time "
                   f"do not depend on {s.title}.")
    curves = _curves(history, pair)
    explain = SWITCH_REASONS.get(pair.switch.key)
    return out + (explain(off, on, curves) if explain else [])
