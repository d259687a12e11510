"""What a search with several objectives or budgets found (``--objective``, ``--max-*``): the
trials that fit the budgets, the Pareto front among them, and how much of the objective space
that front covers (its hypervolume).

``non_dominated``, ``feasible`` and ``hypervolume`` are pure functions over the trials table or
plain arrays; ``search_front`` applies them to a loaded sweep for the report, and
``front_lines`` prints the front for the CLI.

The front is computed over the trials that trained (never a REJECTED one) and fit every budget
by the figures in the trials table (CPU time: the quiet after-sweep timing where it exists).

The hypervolume's reference point is mIoU 0 and, for each cost, its budget where it has one,
else ``REFERENCE_MARGIN`` x its worst figure among those trials. Every objective is scaled so
that the reference is 1 and the ideal (mIoU 1, zero cost) is 0: the hypervolume is then the
fraction of that box the front dominates, from 0 to 1, and two sweeps with the same budgets
compare on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.loading import Experiment
from sweeps.objectives import DEFAULT_OBJECTIVES, LEARNED, OBJECTIVES, is_multi_objective
from sweeps.objectives import REJECTED as WHY
from sweeps.summary import REJECTED

MIOU = OBJECTIVES[LEARNED].column
REFERENCE_MARGIN = 1.1  # a cost without a budget: its reference is 1.1 x the worst figure


def sweep_objectives(meta: dict) -> list[str]:
    """The sweep's objectives (``OBJECTIVES`` keys); mIoU alone for a sweep that recorded none."""
    return list((meta.get("settings") or {}).get("objectives") or DEFAULT_OBJECTIVES)


def sweep_budgets(meta: dict) -> dict[str, float]:
    """The sweep's budgets, objective name -> limit; none for a sweep that recorded none."""
    return {k: float(v) for k, v in ((meta.get("settings") or {}).get("budgets") or {}).items()}


def is_budgeted_search(meta: dict) -> bool:
    """Several objectives or a budget: the sweeps whose report shows their front."""
    return is_multi_objective(sweep_objectives(meta)) or bool(sweep_budgets(meta))


def _minimised(frame: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """(n, d) objective values, maximised ones negated, so lower is better on every column."""
    columns = [frame[OBJECTIVES[name].column].to_numpy(dtype=float) for name in objectives]
    signs = [-1.0 if OBJECTIVES[name].mode == "max" else 1.0 for name in objectives]
    return np.stack([s * c for s, c in zip(signs, columns)], axis=1)


def non_dominated(frame: pd.DataFrame, objectives: list[str]) -> pd.Series:
    """True for each row no other row dominates (at least as good on every objective and
    strictly better on one, each objective in its ``OBJECTIVES`` mode). A row missing any
    objective (NaN) is never on the front and dominates nothing; equal rows both stay."""
    return pd.Series(undominated(_minimised(frame, objectives)), index=frame.index)


def undominated(values: np.ndarray) -> np.ndarray:
    """For (n, d) values, lower better on every column: True for each row no other row
    dominates; a row with a NaN is never True and dominates nothing. The one dominance test
    (the rankings' two-axis fronts use it too)."""
    values = np.asarray(values, dtype=float)
    known = np.isfinite(values).all(axis=1)
    v = values[known]
    # dominated[i, j]: row j dominates row i
    no_worse = (v[None, :, :] <= v[:, None, :]).all(axis=2)
    better = (v[None, :, :] < v[:, None, :]).any(axis=2)
    mask = np.zeros(len(values), dtype=bool)
    mask[np.flatnonzero(known)] = ~(no_worse & better).any(axis=1)
    return mask


def feasible(frame: pd.DataFrame, budgets: dict[str, float]) -> pd.Series:
    """True for each row within every budget (objective name -> limit); a missing figure
    (NaN) fits no budget, as ``sweeps.objectives.over_budget`` decides before training."""
    fits = pd.Series(True, index=frame.index)
    for name, limit in budgets.items():
        fits &= frame[OBJECTIVES[name].column].astype(float).le(limit)  # NaN -> False
    return fits


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The exact volume dominated by ``points`` (n, d), every objective minimised, and bounded
    by ``reference`` (d,). A point not strictly better than the reference on every objective
    (or with a NaN) adds nothing. Two objectives: a sweep along the first; more: slices along
    the last objective, each the (d-1)-volume of the points below it (exact, fine for tens of
    points and up to five objectives)."""
    reference = np.asarray(reference, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, reference.size)
    inside = points[(points < reference).all(axis=1)]  # NaN compares False: left out
    return float(_volume(inside, reference)) if len(inside) else 0.0


def _volume(points: np.ndarray, reference: np.ndarray) -> float:
    if points.shape[1] == 1:
        return reference[0] - points[:, 0].min()
    if points.shape[1] == 2:
        volume, floor = 0.0, reference[1]
        for x, y in points[np.lexsort((points[:, 1], points[:, 0]))]:
            if y < floor:  # the part of [x, ref] x [y, floor] no earlier point covered
                volume += (reference[0] - x) * (floor - y)
                floor = y
        return volume
    levels = np.append(np.unique(points[:, -1]), reference[-1])
    return sum((top - level) * _volume(points[points[:, -1] <= level, :-1], reference[:-1])
               for level, top in zip(levels[:-1], levels[1:]))


def reference_point(frame: pd.DataFrame, objectives: list[str],
                    budgets: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Objective name -> (the reference figure, why it is that figure), per the module's rule;
    ``frame``: the trials the front is computed over."""
    reference = {}
    for name in objectives:
        objective = OBJECTIVES[name]
        if objective.mode == "max":
            reference[name] = (0.0, "none")
        elif name in budgets:
            reference[name] = (budgets[name], "its budget")
        else:
            worst = frame[objective.column].astype(float).max()
            figure = REFERENCE_MARGIN * worst if worst > 0 else 1.0
            reference[name] = (figure, f"{REFERENCE_MARGIN:g} x the worst trained")
    return reference


def scaled_hypervolume(frame: pd.DataFrame, objectives: list[str],
                       reference: dict[str, float]) -> float:
    """The hypervolume of ``frame``'s rows, every objective scaled so that ``reference`` is 1
    and the ideal (mIoU 1, zero cost) 0: the fraction of that box the rows dominate."""
    scaled = []
    for name in objectives:
        values = frame[OBJECTIVES[name].column].to_numpy(dtype=float)
        if OBJECTIVES[name].mode == "max":  # mIoU: 1 - mIoU, over 1 - its reference
            scaled.append((1.0 - values) / (1.0 - reference[name]))
        else:
            scaled.append(values / reference[name])
    return hypervolume(np.stack(scaled, axis=1), np.ones(len(objectives)))


@dataclass
class SearchFront:
    """A budgeted search's result: ``trained`` (the trials that trained, each marked
    ``feasible`` and ``on_front``), ``front`` (best mIoU first), the scaled hypervolume and its
    reference, and the architectures rejected before training (``rejected``, from costs.json)."""

    objectives: list[str]
    budgets: dict[str, float]
    trained: pd.DataFrame
    front: pd.DataFrame
    reference: dict[str, tuple[float, str]] = field(default_factory=dict)
    hypervolume: float | None = None  # None: one objective (the front is its best), or
    # no trial trained yet
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def costs(self) -> list[str]:
        """The cost objectives and budgeted costs, in ``OBJECTIVES`` order: the x-axes of the
        front's plots."""
        return [n for n in OBJECTIVES if n != LEARNED and (n in self.objectives or
                                                           n in self.budgets)]

    def reference_text(self) -> str:
        """"mIoU 0.000; cpu_ms 30 ms (its budget); size_mb 14.3 MB (1.1 x the worst
        trained)"."""
        return "; ".join(f"{_short(n)} {_figure(n, v)}" + (f" ({why})" if why != "none" else "")
                         for n, (v, why) in self.reference.items())


def search_front(exp: Experiment) -> SearchFront:
    """The front of the sweep's objectives among its trained trials within budget, the scaled
    hypervolume (two or more objectives), and the rejected architectures with their costs."""
    objectives, budgets = sweep_objectives(exp.meta), sweep_budgets(exp.meta)
    trained = exp.finished.copy()
    trained["feasible"] = feasible(trained, budgets)
    trained["on_front"] = False
    fits = trained[trained["feasible"]]
    trained.loc[fits.index, "on_front"] = non_dominated(fits, objectives)
    front = trained[trained["on_front"]].sort_values([MIOU, "trial_id"],
                                                     ascending=[False, True], kind="stable")
    result = SearchFront(objectives, budgets, trained, front, rejected=rejected_architectures(exp))
    if is_multi_objective(objectives) and not front.empty:
        result.reference = reference_point(fits, objectives, budgets)
        result.hypervolume = scaled_hypervolume(
            front, objectives, {n: v for n, (v, _) in result.reference.items()})
    return result


def rejected_architectures(exp: Experiment) -> pd.DataFrame:
    """The architectures over a budget, never trained: label, costs.json's figures (cost
    names), ``why``, and ``proposals``: how many trials the search proposed for each (its
    REJECTED trials). Without costs.json, the figures those trials reported."""
    proposed = exp.trials.loc[exp.trials["status"].eq(REJECTED)]
    counts = proposed["label"].value_counts()
    costs = exp.costs[exp.costs[WHY].notna()]
    if costs.empty and not proposed.empty:  # costs.json lost: what the trials reported
        costs = proposed.drop_duplicates("label").set_index("label")
        costs = pd.DataFrame({name: costs[OBJECTIVES[name].column] for name in OBJECTIVES
                              if name != LEARNED} | {WHY: costs["error"]})
    table = costs.reset_index().rename(columns={"index": "label", WHY: "why"})
    table["proposals"] = table["label"].map(counts).fillna(0).astype(int)
    return table


def front_lines(exp: Experiment) -> list[str]:
    """One line per trial on the front, best mIoU first, for the CLI:
    ``"unet/aug lr=0.003: mIoU 0.421, cpu_ms 19.8 ms, size_mb 7.4 MB"``; none for a sweep
    with one objective and no budget (its ranking says it all)."""
    if not is_budgeted_search(exp.meta):
        return []
    result = search_front(exp)
    shown = [LEARNED, *result.costs]
    return [f"{row['name']}: " + ", ".join(
        f"{_short(n)} {_figure(n, row[OBJECTIVES[n].column])}" for n in shown)
        for _, row in result.front.iterrows()]


def _short(name: str) -> str:
    return "mIoU" if name == LEARNED else name


def _figure(name: str, value: float) -> str:
    if pd.isna(value):
        return "n/a"
    if name == LEARNED:
        return f"{value:.3f}"
    unit = OBJECTIVES[name].unit
    text = f"{value / 1e6:.3g}M" if name == "params" and value >= 1e5 else f"{value:.3g}"
    return text + (f" {unit}" if unit else "")


__all__ = ["MIOU", "REFERENCE_MARGIN", "SearchFront", "feasible", "front_lines", "hypervolume",
           "is_budgeted_search", "non_dominated", "reference_point", "rejected_architectures",
           "scaled_hypervolume", "search_front", "sweep_budgets", "sweep_objectives"]
