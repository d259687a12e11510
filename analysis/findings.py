"""Short answers to the course's questions, written from the numbers (pure functions).

Every sentence quotes the figures it rests on, so a reader can check it against the plots, and
nothing is claimed that the numbers do not show (no "overfitting" unless validation loss really
rises while training loss falls). Trials that trained unequal work (ASHA stopped one early)
are compared as such: training times are projected to the planned epochs, and a pair verdict
from unequal epochs says so first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.comparisons import SwitchPair, timed_network
from analysis.rankings import (
    AXES,
    COST_AXES,
    MIOU,
    pareto_front,
    projection_notes,
    rank_groups,
    ties,
    value_texts,
)
from analysis.statistics import Interval, verdict
from sweeps.equal_work import PROJECTED

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


def _curves(history: pd.DataFrame, pair: SwitchPair) -> dict[str, pd.DataFrame]:
    return {k: history[history["trial_id"] == k].sort_values("epoch") for k in (pair.off, pair.on)}


def compare_pair(trials: pd.DataFrame, history: pd.DataFrame, pair: SwitchPair,
                 tolerance: float, scheduler: str | None = None,
                 difference: Interval | None = None) -> list[str]:
    """Answers for one without/with comparison (course Tasks 1 and 2). ``scheduler`` (the
    sweep's, e.g. "asha") names who stopped a trial early. ``difference``: mIoU(on) - mIoU(off)
    with its paired interval over the validation images; it decides the verdict, and without it
    (a sweep stored before trials kept per-image evidence) the stated ``tolerance`` does."""
    t = trials.set_index("trial_id")
    off, on = t.loc[pair.off], t.loc[pair.on]
    s = pair.switch
    curves = _curves(history, pair)
    if off["epochs_done"] == 0 or on["epochs_done"] == 0:
        return [f"{pair.subject}: nothing to compare yet: {s.off} {off['status']} after "
                f"{off['epochs_done']} epochs, {s.on} {on['status']} after {on['epochs_done']}."]
    b_off, b_on = float(off[MIOU]), float(on[MIOU])
    unequal = off["epochs_done"] != on["epochs_done"]
    lines = _unequal_work(off, on, curves, pair, scheduler) if unequal else []
    lines.append(f"{pair.subject}, {s.on}: best val mIoU {b_on:.3f} vs {b_off:.3f} {s.off} "
                 f"({b_on - b_off:+.3f}).")
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
    if difference is not None:
        said = verdict(difference, f"{pair.subject} {s.on}", f"{pair.subject} {s.off}", digits=3)
        lines.append(f"Verdict: {said}; paired bootstrap over the {difference.n} validation "
                     "images, which says how much this validation set can tell, not how much "
                     "another seed would move it.")
    elif ties(b_on, b_off, tolerance):
        lines.append(f"Verdict: no clear winner; best mIoUs are within {tolerance:.0%} (no "
                     "per-image evidence stored, so no interval: the stated margin decides).")
    else:
        winner = s.on if b_on > b_off else s.off
        lines.append(f"Verdict: {pair.subject} {winner} is better "
                     f"(best val mIoU {max(b_on, b_off):.3f} vs {min(b_on, b_off):.3f}), by "
                     f"more than the stated {tolerance:.0%} margin (no per-image evidence "
                     "stored, so no interval).")
    return lines if unequal else lines + _caveats(scheduler, off, on)


def _why_short(row: pd.Series, scheduler: str | None) -> str:
    """Why a trial has fewer epochs than planned, or "" when it has them all and finished."""
    if row["status"] == "TERMINATED" and row["epochs_done"] >= row["epochs_planned"]:
        return ""
    if row["stopped_early"]:
        return f"stopped early by {scheduler.upper() if scheduler else 'the scheduler'}"
    return str(row["status"])


def _unequal_work(off: pd.Series, on: pd.Series, curves: dict[str, pd.DataFrame], pair: SwitchPair,
                  scheduler: str | None) -> list[str]:
    """The first lines of a verdict from unequal epochs: who trained what, and the two
    compared over the epochs both trained."""
    short, other = (off, on) if off["epochs_done"] < on["epochs_done"] else (on, off)

    def trained(row: pd.Series, unit: str = "") -> str:
        why = _why_short(row, scheduler)
        return f"{row['epochs_done']} of {row['epochs_planned']}{unit}" + (f" ({why})" if why
                                                                          else "")

    n = int(short["epochs_done"])
    best = {k: c.loc[c["epoch"] <= n, "val_miou"].max() for k, c in curves.items()}
    epochs = "epoch 1" if n == 1 else f"epochs 1-{n}"
    return [f"Unequal work: {short['name']} trained {trained(short, ' epochs')}, "
            f"{other['name']} {trained(other)}; this comparison is provisional.",
            f"Over the same epochs ({epochs} of each): best val mIoU {best[pair.on]:.3f} "
            f"{pair.switch.on} vs {best[pair.off]:.3f} {pair.switch.off}."]


def _caveats(scheduler: str | None, *rows: pd.Series) -> list[str]:
    out = []
    for row in rows:
        if why := _why_short(row, scheduler):
            out.append(f"Provisional: {row['name']} has {row['epochs_done']} of "
                       f"{row['epochs_planned']} epochs ({why}).")
    return out


WINNER_WORDS = {MIOU: "Best mIoU", "size_mb": "Smallest", "inference_ms_cpu": "Fastest on CPU",
                "inference_ms_gpu": "Fastest on GPU", PROJECTED: "Fastest to train"}


def describe_tradeoffs(models: pd.DataFrame, tolerance: float) -> list[str]:
    """Who wins where (course Task 3): the winners per axis, the Pareto sets, each model's
    ranks. Training time is compared at equal work (projected to the planned epochs)."""
    lines, ranks = [], {name: [] for name in models["name"]}
    for column, axis in AXES.items():
        values = models.set_index("name")[column].astype(float)
        texts = value_texts(models, column, in_parentheses=True)
        groups = rank_groups(values, axis.higher_is_better, tolerance)
        if not groups:
            continue
        tie = f" (tie within {tolerance:.0%})" if len(groups[0]) > 1 else ""
        lines.append(f"{WINNER_WORDS[column]}: " + " = ".join(
            f"{n} ({texts[n]})" for n in groups[0]) + tie + ".")
        for rank, group in enumerate(groups, 1):
            for name in group:
                ranks[name].append(f"#{rank} {axis.label}")
    for column in COST_AXES:
        front = pareto_front(models, column)
        if front:
            lines.append(f"Pareto-optimal for mIoU vs {AXES[column].label}: {', '.join(front)}.")
    lines += [f"{name}: {', '.join(r)}." for name, r in ranks.items() if r]
    notes = projection_notes(models)
    if (notes != "").any():
        lines.append("Training times of models that trained fewer epochs than planned are "
                     "projected (minutes per trained epoch x planned epochs), so every model is "
                     "compared on the same work: " + "; ".join(
                         f"{n} {note}" for n, note in notes.items() if note) + ".")
    return lines


def describe_scheduler(meta: dict, trials: pd.DataFrame) -> str:
    """Which scheduler ran and why (the sweep record says), and what it did to the trials."""
    name = (meta.get("settings") or {}).get("scheduler") or "unknown"
    reason = meta.get("scheduler_reason")
    text = f"{name}" + (f" (why: {str(reason).rstrip('.')})" if reason else "") + "."
    stopped = trials.loc[trials["stopped_early"].eq(True), "name"].astype(str).tolist()
    if stopped:
        text += (f" It stopped {len(stopped)} trial(s) early ({', '.join(stopped)}): their "
                 "training times are projected to the planned epochs, and comparisons with "
                 "them say they are provisional.")
    return text


NOISE = 0.2  # identical networks whose timings differ more than this: noisy measurements


def timing_noise(trials: pd.DataFrame, configs: dict[str, dict]) -> list[str]:
    """Identical networks must time the same; when they do not, the spread is measurement
    noise (trials timed while others ran on the same CPUs), and smaller differences between
    models mean nothing."""
    out = []
    done = trials[trials["epochs_done"] > 0]
    groups = done.groupby(done["trial_id"].map(lambda t: timed_network(configs[t])))
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


def reasons(trials: pd.DataFrame, history: pd.DataFrame, pair: SwitchPair) -> list[str]:
    """What the switch costs (size, inference, training time), and a reason where the numbers
    support one."""
    t = trials.set_index("trial_id", drop=False)
    off, on = t.loc[pair.off], t.loc[pair.on]
    if off["epochs_done"] == 0 or on["epochs_done"] == 0:
        return []
    s = pair.switch
    shown = COST_AXES if s.changes_model else (PROJECTED,)
    both = trials[trials["trial_id"].isin([pair.off, pair.on])]
    texts = {c: value_texts(both, c) for c in shown}
    costs = [f"{AXES[c].label} {texts[c][on['name']]} vs {texts[c][off['name']]}"
             for c in shown if pd.notna(on[c]) and pd.notna(off[c])]
    out = [f"Cost {s.on} vs {s.off}: {'; '.join(costs)}."] if costs else []
    if not s.changes_model:
        out.append(f"The network is the same {s.off} and {s.on}, so size and inference time "
                   f"do not depend on {s.title}.")
    curves = _curves(history, pair)
    explain = SWITCH_REASONS.get(pair.switch.key)
    return out + (explain(off, on, curves) if explain else [])
