"""Rankings of the models on each axis, with ties and Pareto sets: pure functions over the
``trials`` table (one row per trial, identified by its ``name`` column).

Why ties: on a small validation set two models 1% apart are not reliably ordered, and the
course's own report merges such models ("almost the same"). Two values tie when they differ by
at most ``tolerance`` relative to the larger one; a tie group is anchored at its best member,
so ties never chain across a long run of small steps.

Training time is compared at equal work: the axis is ``PROJECTED`` (minutes for the planned
epochs, see ``sweeps.equal_work``), so a trial the scheduler stopped early is ranked by what
its planned epochs would take, never first because it stopped; its values say "projected".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeps.equal_work import PROJECTED, projection_note

DEFAULT_TOLERANCE = 0.05
MIOU = "best_val_miou"


@dataclass(frozen=True)
class Axis:
    column: str
    label: str
    higher_is_better: bool
    unit: str = ""
    fmt: str = ""  # empty: three significant digits, never in e-notation

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def format(self, value: float) -> str:
        text = self.fmt.format(value) if self.fmt else (
            f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}")
        return text + (f" {self.unit}" if self.unit else "")


AXES: dict[str, Axis] = {a.column: a for a in (
    Axis(MIOU, "best val mIoU", True, fmt="{:.3f}"),
    Axis("size_mb", "model size", False, "MB"),
    Axis("inference_ms_cpu", "CPU inference time", False, "ms/frame"),
    Axis("inference_ms_gpu", "GPU inference time", False, "ms/frame"),
    Axis(PROJECTED, "training time for the planned epochs", False, "min"),
)}
COST_AXES = tuple(c for c, a in AXES.items() if not a.higher_is_better)


def value_texts(trials: pd.DataFrame, column: str, in_parentheses: bool = False) -> pd.Series:
    """Each model's value on ``column`` as sentences quote it, indexed by name: "1.67 min
    (projected from 1 of 3 epochs)" (``in_parentheses``: "1.67 min, projected from ...") for a
    training time projected from fewer epochs, so a reader never takes it for a measurement."""
    axis = AXES[column]
    texts = trials.set_index("name")[column].astype(float).map(
        lambda v: axis.format(v) if pd.notna(v) else "")
    if column != PROJECTED:
        return texts
    return pd.Series([(f"{text}, {n}" if in_parentheses else f"{text} ({n})") if n else text
                      for text, n in zip(texts, projection_notes(trials))], index=texts.index)


def projection_notes(trials: pd.DataFrame) -> pd.Series:
    """"projected from 1 of 3 epochs" per model name; "" for a model that trained all its
    epochs (or a table without epoch counts)."""
    names = trials["name"].astype(str)
    if not {"epochs_done", "epochs_planned"} <= set(trials.columns):
        return pd.Series("", index=names)
    return pd.Series([projection_note(d, p) for d, p in
                      zip(trials["epochs_done"], trials["epochs_planned"])], index=names)


def ties(a: float, b: float, tolerance: float) -> bool:
    """Equal within ``tolerance`` relative to the larger magnitude."""
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def rank_groups(values: pd.Series, higher_is_better: bool,
                tolerance: float = DEFAULT_TOLERANCE) -> list[list[str]]:
    """``values`` indexed by model name -> groups best first; a group's members tie with its
    first (best) member. Missing values are left out."""
    ordered = values.dropna().sort_values(ascending=not higher_is_better, kind="stable")
    groups: list[list[str]] = []
    leader = math.nan
    for name, value in ordered.items():
        if groups and ties(leader, value, tolerance):
            groups[-1].append(str(name))
        else:
            groups.append([str(name)])
            leader = value
    return groups


def pareto_front(trials: pd.DataFrame, x: str, y: str = MIOU) -> list[str]:
    """Names of the models no other model beats on both: lower ``x`` and higher ``y``
    (at least as good on both and strictly better on one). Rows missing x or y are left out."""
    from analysis.pareto import undominated  # pareto reads the loader; rankings stays light

    points = trials[["name", x, y]].dropna()
    mask = undominated(np.column_stack([points[x].astype(float), -points[y].astype(float)]))
    front = points[mask].sort_values(x, kind="stable")
    return [str(name) for name in front["name"]]


def _groups(values: pd.Series, column: str, tolerance: float,
            tested: dict[str, list[list[str]]] | None) -> list[list[str]]:
    """The tie groups of an axis: the statistically tested ones where given, else ``tolerance``."""
    if tested and column in tested:
        return [[n for n in group if n in values.dropna().index] for group in tested[column]]
    return rank_groups(values, AXES[column].higher_is_better, tolerance)


def rankings_table(trials: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                   tested: dict[str, list[list[str]]] | None = None) -> pd.DataFrame:
    """Long table: one row per axis x model with its rank (tied models share a rank), value,
    the models it ties with, (cost axes) whether it is Pareto-optimal for mIoU vs that axis,
    and a note where the value is projected from fewer epochs. ``tested``: axis -> tie groups
    from a statistical test (``analysis.intervals.tie_groups``), which replace the margin."""
    rows = []
    notes = projection_notes(trials)
    for column, axis in AXES.items():
        if column not in trials:
            continue
        values = trials.set_index("name")[column].astype(float)
        front = set(pareto_front(trials, column)) if column in COST_AXES else set()
        for rank, group in enumerate(_groups(values, column, tolerance, tested), 1):
            for name in group:
                rows.append({
                    "axis": column, "rank": rank, "name": name, "value": values[name],
                    "unit": axis.unit, "tied_with": "; ".join(n for n in group if n != name),
                    "pareto_optimal": (name in front) if column in COST_AXES else None,
                    "note": notes[name] if column == PROJECTED else "",
                })
    return pd.DataFrame(rows, columns=["axis", "rank", "name", "value", "unit", "tied_with",
                                       "pareto_optimal", "note"])


def ranking_lines(trials: pd.DataFrame, column: str, tolerance: float = DEFAULT_TOLERANCE,
                  tested: dict[str, list[list[str]]] | None = None) -> list[str]:
    """``["1. a (0.41) = b (0.40) (tie within 5%)", "2. c (0.30)"]``; a projected training
    time reads "c (1.67 min, projected from 1 of 3 epochs)"."""
    values = trials.set_index("name")[column].astype(float)
    texts = value_texts(trials, column, in_parentheses=True)
    lines = []
    by_test = bool(tested and column in tested)
    for rank, group in enumerate(_groups(values, column, tolerance, tested), 1):
        members = " = ".join(f"{n} ({texts[n]})" for n in group)
        tie = ("" if len(group) < 2 else " (no detectable difference)" if by_test
               else f" (tie within {tolerance:.0%})")
        lines.append(f"{rank}. {members}{tie}")
    return lines


TRIAL_TEST = ("a paired bootstrap over the validation images cannot tell them apart (95%, "
              "Holm-adjusted over the comparisons with the group's best)")


def rankings_markdown(trials: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                      title: str = "Rankings",
                      tested: dict[str, list[list[str]]] | None = None,
                      test: str = TRIAL_TEST) -> str:
    """Every axis in order, ties called out, then the Pareto sets (mIoU vs each cost).
    ``test`` names the test behind ``tested`` (the words after "tied with the best when")."""
    margin = (f"Models within {tolerance:.0%} of each other (relative) are ranked as a tie "
              "(a stated practical margin, not a test)")
    if tested and MIOU in tested:
        rule = (f"On best val mIoU, models are tied with the best of their group when {test}. "
                f"{margin} on the other axes.")
    else:
        rule = margin + "."
    out = [f"# {title}", "", rule, ""]
    notes = projection_notes(trials)
    projected = notes[notes != ""].index.tolist()
    for column, axis in AXES.items():
        out.append(f"## {axis.label} ({axis.direction})")
        out.append("")
        if column == PROJECTED and projected:
            out += [f"Trained fewer epochs than planned, so ranked by minutes per trained epoch "
                    f"x planned epochs (projected): {', '.join(projected)}.", ""]
        lines = ranking_lines(trials, column, tolerance, tested) if column in trials else []
        out.extend(lines or ["not measured for any model (no GPU in this sweep?)"
                             if column == "inference_ms_gpu" else "no values yet"])
        missing = trials.loc[trials[column].isna(), "name"].tolist() if column in trials else []
        if lines and missing:
            out.append(f"\nno value: {', '.join(missing)}")
        out.append("")
    out += ["## Pareto-optimal models (higher mIoU, lower cost)", ""]
    for column in COST_AXES:
        front = pareto_front(trials, column) if column in trials else []
        if front:
            out.append(f"- best val mIoU vs {AXES[column].label}: {', '.join(front)}")
    out.append("")
    return "\n".join(out)
