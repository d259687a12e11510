"""Rankings of the models on each axis, with ties and Pareto sets: pure functions over the
``trials`` table (one row per trial, identified by its ``name`` column).

Why ties: on a small validation set two models 1% apart are not reliably ordered, and the
course's own report merges such models ("almost the same"). Two values tie when they differ by
at most ``tolerance`` relative to the larger one; a tie group is anchored at its best member,
so ties never chain across a long run of small steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

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
    Axis("train_minutes", "training time", False, "min"),
)}
COST_AXES = tuple(c for c, a in AXES.items() if not a.higher_is_better)


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
    points = trials[["name", x, y]].dropna()
    front = []
    for _, p in points.iterrows():
        dominated = (
            (points[x] <= p[x]) & (points[y] >= p[y]) & ((points[x] < p[x]) | (points[y] > p[y]))
        ).any()
        if not dominated:
            front.append(str(p["name"]))
    return sorted(front, key=lambda n: float(points.set_index("name").loc[n, x]))


def rankings_table(trials: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE) -> pd.DataFrame:
    """Long table: one row per axis x model with its rank (tied models share a rank), value,
    the models it ties with, and (cost axes) whether it is Pareto-optimal for mIoU vs that
    axis."""
    rows = []
    for column, axis in AXES.items():
        if column not in trials:
            continue
        values = trials.set_index("name")[column].astype(float)
        front = set(pareto_front(trials, column)) if column in COST_AXES else set()
        for rank, group in enumerate(rank_groups(values, axis.higher_is_better, tolerance), 1):
            for name in group:
                rows.append({
                    "axis": column, "rank": rank, "name": name, "value": values[name],
                    "unit": axis.unit, "tied_with": "; ".join(n for n in group if n != name),
                    "pareto_optimal": (name in front) if column in COST_AXES else None,
                })
    return pd.DataFrame(rows, columns=["axis", "rank", "name", "value", "unit", "tied_with",
                                       "pareto_optimal"])


def ranking_lines(trials: pd.DataFrame, column: str,
                  tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """``["1. a (0.41) = b (0.40) (tie within 5%)", "2. c (0.30)"]``."""
    axis = AXES[column]
    values = trials.set_index("name")[column].astype(float)
    lines = []
    for rank, group in enumerate(rank_groups(values, axis.higher_is_better, tolerance), 1):
        members = " = ".join(f"{n} ({axis.format(values[n])})" for n in group)
        tie = f" (tie within {tolerance:.0%})" if len(group) > 1 else ""
        lines.append(f"{rank}. {members}{tie}")
    return lines


def rankings_markdown(trials: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                      title: str = "Rankings") -> str:
    """Every axis in order, ties called out, then the Pareto sets (mIoU vs each cost)."""
    out = [f"# {title}", "",
           f"Models within {tolerance:.0%} of each other (relative) are ranked as a tie.", ""]
    for column, axis in AXES.items():
        out.append(f"## {axis.label} ({axis.direction})")
        out.append("")
        lines = ranking_lines(trials, column, tolerance) if column in trials else []
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
