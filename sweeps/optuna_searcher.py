"""Ray's ``OptunaSearch`` told what segsweep's trials mean (Ray 2.60 as pinned; tested in
tests/sweeps/test_optuna_searcher.py).

Three Ray behaviours it works around, each in ``on_trial_complete``/``on_trial_result``:
- Ray tells Optuna the metric of a trial's *last* report; a trial's value is its best epoch's
  mIoU, so the searcher reads ``best_val_miou`` (and the cost columns, which every report of
  a trial carries unchanged).
- Ray tells a trial the scheduler stopped early (ASHA) as COMPLETE; here it is PRUNED, as
  Optuna's own pruners would mark it, with its last reported value as Optuna keeps it.
- A trial of an architecture over a budget (sweeps/costs.py) reports no mIoU; it is told as
  COMPLETE with mIoU 0 and its real costs, and every trial's budget excess is set as its
  constraints (``Trial.set_constraint``, Optuna 5), so the constrained sampler ranks it below
  every trial within budget, learns to avoid it, and no front holds it.

Imports Ray and Optuna: sweeps/search.py loads it only to build a searcher.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from sweeps.objectives import LEARNED, OBJECTIVES, REJECTED

logger = logging.getLogger(__name__)
def constraint_values(costs: dict[str, Any], budgets: dict[str, float]) -> dict[str, float]:
    """Per budget, the cost minus the limit (<= 0: within it); a cost that was not measured
    counts as over."""
    values = {}
    for name, limit in budgets.items():
        cost = costs.get(name)
        ok = isinstance(cost, int | float) and math.isfinite(cost)
        values[name] = float(cost) - float(limit) if ok else 1.0
    return values


class SweepOptunaSearch(OptunaSearch):
    """``objectives``: OBJECTIVES names (``miou`` among them); ``budgets``: name -> limit;
    ``costs``: grid label -> its architecture's measured costs."""

    def __init__(self, *, objectives: list[str], budgets: dict[str, float],
                 costs: dict[str, dict[str, Any]], **kwargs: Any):
        columns = [OBJECTIVES[n].column for n in objectives]
        modes = [OBJECTIVES[n].mode for n in objectives]
        multi = len(objectives) > 1
        super().__init__(metric=columns if multi else columns[0],
                         mode=modes if multi else modes[0], **kwargs)
        self.objectives, self.budgets, self.costs = list(objectives), dict(budgets), dict(costs)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if result.get(REJECTED) or trial_id not in self._ot_trials:
            return
        if isinstance(self.metric, str) and not math.isfinite(result.get(self.metric, math.nan)):
            return  # Optuna refuses a NaN intermediate value (a diverged epoch)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if error or not result or trial_id in self._completed_trials or (
                trial_id not in self._ot_trials):
            super().on_trial_complete(trial_id, result, error)
            return
        ot_trial = self._ot_trials[trial_id]
        label = result.get("point")
        costs = self.costs.get(label, {})
        ot_trial.set_user_attr("label", label)
        for name, excess in constraint_values(costs, self.budgets).items():
            ot_trial.set_constraint(name, excess)
        values: list[float] | None
        state = TrialState.COMPLETE
        if result.get(REJECTED):
            ot_trial.set_user_attr(REJECTED, result[REJECTED])
            values = [0.0 if n == LEARNED else float(costs.get(n, math.nan))
                      for n in self.objectives]
        elif result.get("diverged"):
            values, state = None, TrialState.FAIL
        elif len(self.objectives) == 1 and result.get("epoch", 0) < result.get(
                "epochs_planned", 0):
            values, state = None, TrialState.PRUNED  # the scheduler stopped it
        else:
            values = [float(result.get(OBJECTIVES[n].column, math.nan)) for n in self.objectives]
        if values is not None and not all(math.isfinite(v) for v in values):
            values, state = None, TrialState.FAIL
        try:
            tell = values if values is None or len(values) > 1 else values[0]
            self._ot_study.tell(ot_trial, tell, state=state)
        except Exception as exc:  # noqa: BLE001 - Ray's own behaviour: a bad tell is a warning
            logger.warning(exc)
        self._completed_trials.add(trial_id)


__all__ = ["SweepOptunaSearch", "constraint_values"]
